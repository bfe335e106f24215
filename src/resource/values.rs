//! Enumerated values of a Machine's config (service protocol, concurrency type, check
//! type, restart policy): typed for the code that compares and builds them, written as
//! the text Fly uses on the wire and in plans. The spec's declarations only let the
//! known values through; a value observed on Fly that this version does not know is
//! kept as `Other` so a plan never loses or rewrites it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares one enumerated value type: its known variants with their wire text, an
/// `Other(String)` fallback, and conversions from and to that text.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value Fly reported that this version does not know, kept as it is.
            Other(String),
        }

        impl $name {
            /// The known values' wire texts, in declaration order.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// The text Fly uses for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($text => Self::$variant,)+
                    _ => Self::Other(s),
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                match v {
                    $name::Other(s) => s,
                    known => known.as_str().to_string(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// The transport of a Machine service.
    Protocol {
        Tcp => "tcp",
        Udp => "udp",
    }
}

wire_enum! {
    /// What a service's concurrency limits count.
    ConcurrencyKind {
        Connections => "connections",
        Requests => "requests",
    }
}

wire_enum! {
    /// How a Machine check probes.
    CheckKind {
        Http => "http",
        Tcp => "tcp",
    }
}

wire_enum! {
    /// When Fly restarts a Machine whose process exits.
    RestartPolicy {
        No => "no",
        Always => "always",
        OnFailure => "on-failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values_read_as_their_variants() {
        assert_eq!(Protocol::from("udp"), Protocol::Udp);
        assert_eq!(ConcurrencyKind::from("requests"), ConcurrencyKind::Requests);
        assert_eq!(CheckKind::from("http"), CheckKind::Http);
        assert_eq!(RestartPolicy::from("on-failure"), RestartPolicy::OnFailure);
        for text in RestartPolicy::KNOWN {
            assert!(!matches!(
                RestartPolicy::from(*text),
                RestartPolicy::Other(_)
            ));
        }
    }

    #[test]
    fn serialized_as_the_wire_text() {
        assert_eq!(
            serde_json::to_string(&RestartPolicy::OnFailure).unwrap(),
            "\"on-failure\""
        );
        let v: Protocol = serde_json::from_str("\"quic\"").unwrap();
        assert_eq!(v, Protocol::Other("quic".into()));
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"quic\"");
    }

    proptest! {
        /// Any text survives the round trip through the typed value unchanged.
        #[test]
        fn any_text_round_trips(s in "[a-z-]{0,12}") {
            prop_assert_eq!(String::from(CheckKind::from(s.as_str())), s.clone());
            prop_assert_eq!(RestartPolicy::from(s.clone()).to_string(), s.clone());
            let protocol = Protocol::from(s.clone());
            prop_assert_eq!(protocol.as_str(), s.as_str());
            prop_assert_eq!(String::from(ConcurrencyKind::from(s.clone())), s);
        }
    }
}
