//! Who is speaking: validated usernames, passwords, roles, users, and room
//! visibility.
//!
//! Like [`crate::domain`], every value here is parsed once at the edge; the
//! store and the API only hold valid ones.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

use crate::domain::{Author, InvalidInput};

/// A username: after NFKC normalisation and lowercasing it must match
/// `^[a-z0-9][a-z0-9_.-]{1,31}$`.
///
/// Normalising first folds look-alike spellings (full-width `Ａｄａ`, the
/// `ﬁ` ligature, upper case) onto one account; what still holds a character
/// outside the ASCII pattern (Cyrillic `а` posing as Latin `a`, zero-width
/// joiners, control characters) is refused rather than guessed at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 32;
    /// Longest raw input looked at; longer input is refused before it is
    /// normalised (normalisation can grow a string).
    const MAX_RAW_BYTES: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let refuse = || {
            InvalidInput::new(
                "invalid_username",
                "usernames are 2-32 characters of a-z, 0-9, '_', '.' and '-', \
                 starting with a letter or digit",
            )
        };
        if raw.len() > Self::MAX_RAW_BYTES {
            return Err(refuse());
        }
        let normalised: String = raw.trim().nfkc().collect::<String>().to_lowercase();
        let bytes = normalised.as_bytes();
        let valid = (2..=Self::MAX_LEN).contains(&bytes.len())
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            });
        if valid {
            Ok(Self(normalised))
        } else {
            Err(refuse())
        }
    }

    /// A username read back from the database, trusted as stored.
    pub(crate) fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed: 10-1024 characters, no control characters. Its
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    /// Bounds the hashing work one request can ask for.
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(InvalidInput::new(
                "invalid_password",
                format!("passwords are at least {} characters", Self::MIN_CHARS),
            ));
        }
        if chars > Self::MAX_CHARS || raw.len() > 4 * Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "invalid_password",
                format!("passwords are at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "invalid_password",
                "passwords cannot contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// What a user may do beyond speaking: admins manage users and any room's
/// members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl FromStr for Role {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(InvalidInput::new("invalid_role", "role is admin or member")),
        }
    }
}

/// A user's stable id (a UUID, as text in both databases).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub(crate) fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user, as every endpoint returns one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct User {
    #[schema(value_type = String, example = "7b0c6f5e-2f55-4a4c-9c43-1f0c8a3e2d11")]
    pub id: UserId,
    #[schema(value_type = String, example = "ada", pattern = "^[a-z0-9][a-z0-9_.-]{1,31}$")]
    pub username: Username,
    #[schema(example = "Ada")]
    pub display_name: String,
    pub role: Role,
    /// Suspended users cannot sign in, send or stream.
    #[serde(skip)]
    pub suspended: bool,
}

/// A display name: the rules of a message author (1-64 characters after
/// trimming, no control characters).
pub type DisplayName = Author;

/// Who may read a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Every signed-in user.
    Public,
    /// Its members only; to anyone else it does not exist.
    Private,
    /// A direct room: private, with members fixed when it was created.
    Direct,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Direct => "direct",
        }
    }

    pub(crate) fn from_stored(stored: &str) -> Self {
        if stored == "private" {
            Visibility::Private
        } else {
            Visibility::Public
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_pattern_after_normalisation() {
        for (raw, expected) in [
            ("ada", "ada"),
            ("Ada", "ada"),
            ("  ada.l-ove_1 ", "ada.l-ove_1"),
            ("\u{ff21}\u{ff44}\u{ff41}", "ada"), // full-width Ａｄａ
            ("\u{fb01}sh", "fish"),              // the ﬁ ligature
            ("0x", "0x"),
        ] {
            assert_eq!(Username::parse(raw).unwrap().as_str(), expected, "{raw:?}");
        }
        let too_long = "a".repeat(33);
        for bad in [
            "",
            "a",
            "_ada",
            ".ada",
            "ad a",
            "ad\u{0}a",
            "ad\u{7}a",
            "\u{430}da",   // Cyrillic а
            "ad\u{200d}a", // zero-width joiner
            "ad\u{301}a",  // combining accent
            "ad@a",
            too_long.as_str(),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Username::parse(&"a".repeat(10_000)).is_err());
    }

    #[test]
    fn passwords_are_ten_to_1024_characters_without_control_characters() {
        assert!(Password::parse("0123456789").is_ok());
        assert!(Password::parse("ünïcødé pässwörd").is_ok());
        assert!(Password::parse("012345678").is_err());
        assert!(Password::parse(&"p".repeat(1025)).is_err());
        assert!(Password::parse("0123456789\n").is_err());
        assert!(Password::parse("0123456789\u{0}").is_err());
        assert!(!format!("{:?}", Password::parse("secret-password").unwrap()).contains("secret"));
    }

    #[test]
    fn roles_and_visibility_round_trip_as_lowercase() {
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert_eq!("member".parse::<Role>().unwrap(), Role::Member);
        assert!("root".parse::<Role>().is_err());
        assert_eq!(serde_json::to_string(&Role::Admin).unwrap(), "\"admin\"");
        assert_eq!(Visibility::from_stored("private"), Visibility::Private);
        assert_eq!(Visibility::from_stored("public").as_str(), "public");
    }
}
