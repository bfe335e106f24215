fn main() {
    let p = std::env::args().nth(1).unwrap();
    match flotilla::spec::load_file(std::path::Path::new(&p)) {
        Ok(l) => { for r in l.desired.resources.iter() { println!("{} {}", r.address, r.kind()); } println!("{}", l.warnings); }
        Err(e) => println!("{e}"),
    }
}
