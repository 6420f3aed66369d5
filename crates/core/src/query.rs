use std::fmt;

use serde::Serialize;

use crate::InputError;

/// What the analyst asks about: trimmed, 1..=100 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Keyword(String);

impl Keyword {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(InputError::BlankKeyword);
        }
        if chars > Self::MAX_CHARS {
            return Err(InputError::KeywordTooLong {
                max: Self::MAX_CHARS,
                got: chars,
            });
        }
        Ok(Keyword(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two keywords are the same question in: lowercase, single spaces.
    /// Cache keys and the store's registry use it, so "AI" and " ai " share a result.
    pub fn normalized(&self) -> String {
        self.0
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many posts to analyse: 1..=1000, 250 when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Limit(u32);

impl Limit {
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 1000;
    pub const DEFAULT: Limit = Limit(250);

    pub fn parse(raw: i64) -> Result<Self, InputError> {
        if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&raw) {
            Ok(Limit(raw as u32))
        } else {
            Err(InputError::LimitOutOfRange {
                min: Self::MIN,
                max: Self::MAX,
                got: raw,
            })
        }
    }

    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_is_trimmed_and_bounded() {
        assert_eq!(Keyword::parse("  AI ").unwrap().as_str(), "AI");
        assert_eq!(Keyword::parse(" \t\n"), Err(InputError::BlankKeyword));
        assert_eq!(Keyword::parse(""), Err(InputError::BlankKeyword));
        assert!(
            Keyword::parse(&"é".repeat(100)).is_ok(),
            "the bound counts characters, not bytes"
        );
        assert_eq!(
            Keyword::parse(&"a".repeat(101)),
            Err(InputError::KeywordTooLong { max: 100, got: 101 })
        );
    }

    #[test]
    fn normalized_keyword_ignores_case_and_spacing() {
        let a = Keyword::parse("Climate   Change").unwrap();
        let b = Keyword::parse("climate change").unwrap();
        assert_eq!(a.normalized(), b.normalized());
    }

    #[test]
    fn limit_bounds() {
        assert_eq!(Limit::default().get(), 250);
        assert_eq!(Limit::parse(1).unwrap().get(), 1);
        assert_eq!(Limit::parse(1000).unwrap().get(), 1000);
        for bad in [0, -5, 1001, i64::MAX] {
            let err = Limit::parse(bad).unwrap_err();
            assert_eq!(err.field(), "limit");
            assert_eq!(err.code(), "invalid_limit");
        }
    }
}
