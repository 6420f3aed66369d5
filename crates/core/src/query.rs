use std::fmt;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::InputError;

/// What the analyst asks about: trimmed, NFC-normalized, 1..=100 characters, not
/// blank, and free of control (Cc) and format (Cf) characters.
///
/// Control characters include NUL, which PostgreSQL cannot store in text; format
/// characters (bidi overrides, zero-width spaces) make two keywords look alike while
/// differing. NFC makes "é" typed as one code point or as "e" + accent the same
/// question, with one cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Keyword(String);

impl Keyword {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let trimmed: String = raw.trim().nfc().collect();
        if let Some((position, c)) = trimmed.chars().enumerate().find(|(_, c)| is_invisible(*c)) {
            return Err(InputError::KeywordInvisibleCharacter {
                code_point: u32::from(c),
                position: position + 1,
            });
        }
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
        Ok(Keyword(trimmed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A regular expression (in the syntax Python's `re` and ECMA-262 share) that a
    /// keyword as sent matches exactly when it holds a visible character and no
    /// control or format one: the pattern of the API description, built from the same
    /// character table as [`Keyword::parse`], so the two cannot disagree.
    pub fn schema_pattern() -> String {
        let mut ranges: Vec<(char, char)> = Vec::new();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if !is_invisible(c) {
                continue;
            }
            match ranges.last_mut() {
                Some((_, end)) if u32::from(*end) + 1 == u32::from(c) => *end = c,
                _ => ranges.push((c, c)),
            }
        }
        // Astral characters go in as themselves: `\u` escapes stop at U+FFFF.
        let escape = |c: char| match u16::try_from(u32::from(c)) {
            Ok(unit) => format!("\\u{unit:04X}"),
            Err(_) => c.to_string(),
        };
        let class: String = ranges
            .iter()
            .map(|&(a, b)| match a == b {
                true => escape(a),
                false => format!("{}-{}", escape(a), escape(b)),
            })
            .collect();
        format!("^[^{class}]*[^{class}\\s][^{class}]*$")
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

/// Control (Cc) or format (Cf) characters: nothing a person types as a keyword.
fn is_invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control | GeneralCategory::Format
    )
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

/// How many example posts an answer shows for each emotion: 0..=5, none when not given.
/// They are read from the cached analysis, which keeps [`Examples::MAX`] of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Examples(u8);

impl Examples {
    pub const MAX: u8 = 5;

    pub fn parse(raw: i64) -> Result<Self, InputError> {
        match u8::try_from(raw) {
            Ok(n) if n <= Self::MAX => Ok(Examples(n)),
            _ => Err(InputError::ParameterOutOfRange {
                field: "examples",
                min: 0,
                max: u32::from(Self::MAX),
                got: raw,
            }),
        }
    }

    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

/// One question as the service answers it: a keyword, how many posts, and which.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    pub keyword: Keyword,
    pub limit: Limit,
    pub scope: crate::Scope,
}

impl Question {
    /// About all of Reddit, all time.
    pub fn new(keyword: Keyword, limit: Limit) -> Self {
        Question {
            keyword,
            limit,
            scope: crate::Scope::unrestricted(),
        }
    }

    pub fn within(self, scope: crate::Scope) -> Self {
        Question { scope, ..self }
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
    fn control_and_format_characters_are_refused_with_their_place() {
        for (raw, code_point, position) in [
            ("a\u{0}b", 0x0, 2),
            ("ai\tnews", 0x9, 3),
            ("\u{202e}evil", 0x202e, 1),
            ("zero\u{200b}width", 0x200b, 5),
            ("x\u{7f}", 0x7f, 2),
        ] {
            let err = Keyword::parse(raw).unwrap_err();
            assert_eq!(
                err,
                InputError::KeywordInvisibleCharacter {
                    code_point,
                    position
                },
                "{raw:?}"
            );
            assert_eq!((err.field(), err.code()), ("keyword", "invalid_keyword"));
        }
        // Leading and trailing whitespace (tabs and newlines too) is trimmed, not refused.
        assert_eq!(Keyword::parse("\tAI\n").unwrap().as_str(), "AI");
    }

    #[test]
    fn look_alike_keywords_are_one_question() {
        let composed = Keyword::parse("caf\u{e9}").unwrap();
        let decomposed = Keyword::parse("cafe\u{301}").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(decomposed.as_str(), "caf\u{e9}");
    }

    #[test]
    fn normalized_keyword_ignores_case_and_spacing() {
        let a = Keyword::parse("Climate   Change").unwrap();
        let b = Keyword::parse("climate change").unwrap();
        assert_eq!(a.normalized(), b.normalized());
    }

    #[test]
    fn examples_bounds() {
        assert_eq!(Examples::default().get(), 0);
        assert_eq!(Examples::parse(0).unwrap().get(), 0);
        assert_eq!(Examples::parse(5).unwrap().get(), 5);
        for bad in [-1, 6, 256, i64::MIN] {
            let err = Examples::parse(bad).unwrap_err();
            assert_eq!((err.field(), err.code()), ("examples", "invalid_parameter"));
        }
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
