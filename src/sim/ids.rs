//! Identifier and name generation in Fly's formats, seeded for reproducible runs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

const HEX: &[u8] = b"0123456789abcdef";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ADJECTIVES: &[&str] = &[
    "aged",
    "ancient",
    "autumn",
    "billowing",
    "bitter",
    "black",
    "blue",
    "bold",
    "broad",
    "broken",
    "calm",
    "cold",
    "cool",
    "crimson",
    "curly",
    "damp",
    "dark",
    "dawn",
    "delicate",
    "divine",
    "dry",
    "empty",
    "falling",
    "fancy",
    "flat",
    "floral",
    "fragrant",
    "frosty",
    "gentle",
    "green",
    "hidden",
    "holy",
    "icy",
    "jolly",
    "late",
    "lingering",
    "little",
    "lively",
    "long",
    "lucky",
    "misty",
    "morning",
    "muddy",
    "nameless",
    "noisy",
    "old",
    "patient",
    "polished",
    "proud",
    "purple",
    "quiet",
    "rapid",
    "red",
    "restless",
    "rough",
    "round",
    "royal",
    "shiny",
    "shy",
    "silent",
    "small",
    "snowy",
    "soft",
    "solitary",
    "sparkling",
    "spring",
    "square",
    "steep",
    "still",
    "summer",
    "super",
    "sweet",
    "throbbing",
    "tight",
    "tiny",
    "twilight",
    "wandering",
    "weathered",
    "white",
    "wild",
    "winter",
    "wispy",
    "withered",
    "yellow",
    "young",
];
const NOUNS: &[&str] = &[
    "art",
    "band",
    "bar",
    "base",
    "bird",
    "block",
    "boat",
    "bonus",
    "bread",
    "breeze",
    "brook",
    "bush",
    "butterfly",
    "cake",
    "cell",
    "cherry",
    "cloud",
    "credit",
    "darkness",
    "dawn",
    "dew",
    "disk",
    "dream",
    "dust",
    "feather",
    "field",
    "fire",
    "firefly",
    "flower",
    "fog",
    "forest",
    "frog",
    "frost",
    "glade",
    "glitter",
    "grass",
    "hall",
    "hat",
    "haze",
    "heart",
    "hill",
    "king",
    "lab",
    "lake",
    "leaf",
    "limit",
    "math",
    "meadow",
    "mode",
    "moon",
    "morning",
    "mountain",
    "mouse",
    "mud",
    "night",
    "paper",
    "pine",
    "poetry",
    "pond",
    "queen",
    "rain",
    "recipe",
    "resonance",
    "rice",
    "river",
    "salad",
    "scene",
    "sea",
    "shadow",
    "shape",
    "silence",
    "sky",
    "smoke",
    "snow",
    "snowflake",
    "sound",
    "star",
    "sun",
    "sunset",
    "surf",
    "term",
    "thunder",
    "tooth",
    "tree",
    "truth",
    "union",
    "unit",
    "violet",
    "voice",
    "water",
    "waterfall",
    "wave",
    "wildflower",
    "wind",
    "wood",
];

/// Draws identifiers from a seeded random source.
pub(crate) struct IdGen {
    rng: StdRng,
}

impl IdGen {
    /// `epoch` distinguishes runs over the same persisted world so they never replay ids.
    pub fn new(seed: u64, epoch: u64) -> IdGen {
        let mixed = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        IdGen {
            rng: StdRng::seed_from_u64(mixed),
        }
    }

    fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(alphabet[self.rng.random_range(0..alphabet.len())]))
            .collect()
    }

    pub fn machine_id(&mut self) -> String {
        self.chars(HEX, 14)
    }
    pub fn app_id(&mut self) -> String {
        self.chars(LOWER_ALNUM, 16)
    }
    pub fn volume_id(&mut self) -> String {
        format!("vol_{}", self.chars(LOWER_ALNUM, 16))
    }
    pub fn snapshot_id(&mut self) -> String {
        format!("vs_{}", self.chars(ALNUM, 25))
    }
    /// ULID-shaped: 26 Crockford base-32 characters.
    pub fn instance_id(&mut self) -> String {
        format!("01{}", self.chars(CROCKFORD, 24))
    }
    pub fn nonce(&mut self) -> String {
        self.chars(HEX, 12)
    }
    pub fn zone(&mut self) -> String {
        self.chars(HEX, 4)
    }
    pub fn private_ip(&mut self) -> String {
        let a: u16 = self.rng.random();
        let b: u16 = self.rng.random();
        let c: u16 = self.rng.random();
        format!("fdaa:0:1:a7b:{a:x}:{b:x}:{c:x}:2")
    }
    pub fn machine_name(&mut self) -> String {
        let adj = ADJECTIVES[self.rng.random_range(0..ADJECTIVES.len())];
        let noun = NOUNS[self.rng.random_range(0..NOUNS.len())];
        let n: u16 = self.rng.random_range(1..10_000);
        format!("{adj}-{noun}-{n}")
    }
}

/// Hex SHA-256 of the parts, separated so that ("ab","c") and ("a","bc") differ.
pub(crate) fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_determinism() {
        let mut a = IdGen::new(1, 0);
        let mut b = IdGen::new(1, 0);
        let id = a.machine_id();
        assert_eq!(id, b.machine_id());
        assert_eq!(id.len(), 14);
        assert!(a.volume_id().starts_with("vol_"));
        assert_eq!(a.instance_id().len(), 26);
        assert_ne!(IdGen::new(1, 1).machine_id(), IdGen::new(1, 0).machine_id());
        let name = a.machine_name();
        assert_eq!(name.split('-').count(), 3);
        assert!(crate::platform::machine_name_problem(&name).is_none());
        assert_ne!(digest(&["ab", "c"]), digest(&["a", "bc"]));
    }
}
