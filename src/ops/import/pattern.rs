//! The `--app-pattern` matcher: a plain shell-style pattern over app names, where `*`
//! matches any run of characters and `?` exactly one. App names are short, so a
//! backtracking match over characters is enough; no glob library is needed.

/// A parsed app-name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPattern {
    text: String,
}

impl AppPattern {
    pub fn new(text: &str) -> AppPattern {
        AppPattern {
            text: text.to_string(),
        }
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let p: Vec<char> = self.text.chars().collect();
        let s: Vec<char> = name.chars().collect();
        matches_at(&p, &s)
    }
}

impl std::fmt::Display for AppPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Iterative wildcard match: remembers the last `*` and retries from there.
fn matches_at(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::AppPattern;

    #[test]
    fn stars_and_question_marks_match_whole_names() {
        let p = AppPattern::new("my-jarvis-*");
        assert!(p.matches("my-jarvis-alice"));
        assert!(p.matches("my-jarvis-"));
        assert!(!p.matches("other-jarvis-alice"));
        assert!(!p.matches("my-jarvis"));
        let q = AppPattern::new("a?c*z");
        assert!(q.matches("abcz"));
        assert!(q.matches("abcxyz"));
        assert!(!q.matches("acz"));
        assert!(!q.matches("abcza"));
        assert!(AppPattern::new("*").matches(""));
        assert!(AppPattern::new("exact").matches("exact"));
        assert!(!AppPattern::new("exact").matches("exactly"));
        assert!(AppPattern::new("*-*-*").matches("a-b-c"));
        assert!(!AppPattern::new("*-*-*").matches("a-b"));
    }
}
