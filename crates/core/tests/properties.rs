//! Property tests of the domain's parsers (`make fuzz` runs them longer):
//! any input is answered with a value or a named error, never a panic, and what is
//! accepted is exactly what the contract says.

use moodwire_core::ports::cache_key;
use moodwire_core::{InputError, Keyword, Limit, Question, Scope, Subreddits, Window};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

/// Format (Cf) characters people meet: soft hyphen, zero-width space and joiners,
/// direction marks and overrides, word joiner, invisible operators, byte-order mark.
const KNOWN_FORMAT: [char; 17] = [
    '\u{ad}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}',
    '\u{202c}', '\u{202d}', '\u{202e}', '\u{2060}', '\u{2061}', '\u{2066}', '\u{2067}', '\u{2069}',
    '\u{feff}',
];

proptest! {
    #[test]
    fn a_keyword_is_accepted_exactly_when_trimmed_it_is_1_to_100_visible_chars(raw in any::<String>()) {
        let trimmed: String = raw.trim().nfc().collect();
        let chars = trimmed.chars().count();
        match Keyword::parse(&raw) {
            Ok(keyword) => {
                prop_assert_eq!(keyword.as_str(), trimmed.as_str());
                prop_assert!((1..=Keyword::MAX_CHARS).contains(&chars));
                prop_assert!(!keyword.as_str().chars().any(|c| c.is_control() || KNOWN_FORMAT.contains(&c)));
            }
            Err(InputError::BlankKeyword) => prop_assert_eq!(chars, 0),
            Err(InputError::KeywordTooLong { got, .. }) => {
                prop_assert_eq!(got, chars);
                prop_assert!(chars > Keyword::MAX_CHARS);
            }
            Err(InputError::KeywordInvisibleCharacter { code_point, position }) => {
                // The character named is there, where it is said to be.
                let found = trimmed.chars().nth(position - 1).map(u32::from);
                prop_assert_eq!(found, Some(code_point));
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn an_invisible_character_anywhere_inside_is_refused(
        word in "[A-Za-z0-9]{2,20}",
        at in any::<prop::sample::Index>(),
        invisible in prop_oneof![
            (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
            (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap()),
            prop::sample::select(KNOWN_FORMAT.to_vec()),
        ],
    ) {
        let cut = 1 + at.index(word.len() - 1);
        let raw = format!("{}{invisible}{}", &word[..cut], &word[cut..]);
        match Keyword::parse(&raw) {
            Err(e @ InputError::KeywordInvisibleCharacter { .. }) => {
                prop_assert_eq!(e.code(), "invalid_keyword");
                prop_assert_eq!(e.field(), "keyword");
            }
            other => prop_assert!(false, "{raw:?} gave {other:?}"),
        }
    }

    #[test]
    fn canonically_equivalent_keywords_are_one_question(word in "[a-z]{1,10}", accent in prop::sample::select(vec!['\u{301}', '\u{300}', '\u{308}', '\u{303}'])) {
        // "e" + combining accent and the precomposed letter are the same text.
        let decomposed = format!("{word}e{accent}");
        let composed: String = decomposed.nfc().collect();
        prop_assert_ne!(&composed, &decomposed);
        prop_assert_eq!(Keyword::parse(&decomposed).unwrap(), Keyword::parse(&composed).unwrap());
    }

    #[test]
    fn normalization_is_canonical(raw in "\\PC{0,40}( \\PC{0,40}){0,3}") {
        if let Ok(keyword) = Keyword::parse(&raw) {
            let normalized = keyword.normalized();
            prop_assert_eq!(normalized.trim(), normalized.as_str());
            prop_assert!(!normalized.contains("  "));
            prop_assert!(normalized.split(' ').all(|w| !w.is_empty() && !w.contains(char::is_whitespace)));
            prop_assert_eq!(normalized.to_lowercase(), normalized.clone());
            // Normalizing again changes nothing (when the lowercase form still fits).
            if let Ok(again) = Keyword::parse(&normalized) {
                prop_assert_eq!(again.normalized(), normalized);
            }
        }
    }

    #[test]
    fn case_and_spacing_do_not_make_a_different_question(
        words in prop::collection::vec("[A-Za-z0-9#+.]{1,12}", 1..5),
        gaps in prop::collection::vec("[ ]{1,3}", 4),
        upper in any::<bool>(),
    ) {
        let plain = words.join(" ");
        let mut messy = String::from(gaps[0].as_str());
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                messy.push_str(&gaps[i % gaps.len()]);
            }
            messy.push_str(&if upper { word.to_uppercase() } else { word.to_lowercase() });
        }
        prop_assert_eq!(
            Keyword::parse(&messy).unwrap().normalized(),
            Keyword::parse(&plain).unwrap().normalized()
        );
    }

    #[test]
    fn a_limit_is_accepted_exactly_from_1_to_1000(raw in any::<i64>()) {
        match Limit::parse(raw) {
            Ok(limit) => {
                prop_assert!((1..=1000).contains(&raw));
                prop_assert_eq!(limit.get() as i64, raw);
            }
            Err(e) => {
                prop_assert!(!(1..=1000).contains(&raw));
                prop_assert_eq!(e.field(), "limit");
            }
        }
    }

    #[test]
    fn subreddits_are_accepted_exactly_as_reddit_names_them(names in prop::collection::vec("[A-Za-z0-9_]{1,23}|\\PC{0,6}", 0..14)) {
        let valid = |n: &String| (2..=21).contains(&n.chars().count()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let mut distinct: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        distinct.sort();
        distinct.dedup();
        match Subreddits::parse(&names) {
            Ok(parsed) => {
                prop_assert!(names.iter().all(valid) && distinct.len() <= Subreddits::MAX);
                prop_assert_eq!(parsed.names(), &distinct[..]);
                // Read back (from the cache or an event), a scope is the same scope.
                let again = Subreddits::parse(parsed.names()).unwrap();
                prop_assert_eq!(again, parsed);
            }
            Err(InputError::InvalidSubreddit { position, .. }) => {
                prop_assert!(!valid(&names[position - 1]));
                prop_assert!(names[..position - 1].iter().all(valid), "the first bad name is named");
            }
            Err(InputError::TooManySubreddits { got, .. }) => {
                prop_assert!(names.iter().all(valid));
                prop_assert_eq!(got, distinct.len());
                prop_assert!(got > Subreddits::MAX);
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn the_order_and_case_of_subreddits_do_not_make_a_different_question(
        names in prop::collection::vec("[a-z0-9_]{2,21}", 1..6),
        window in prop::sample::select(Window::NAMES.to_vec()),
        seed in any::<u64>(),
    ) {
        let mut shuffled: Vec<String> = names.iter().rev().cloned().collect();
        shuffled.rotate_left((seed as usize) % names.len());
        let shouted: Vec<String> = shuffled.iter().map(|n| n.to_uppercase()).collect();
        let question = |names: &[String]| {
            let scope = Scope { subreddits: Subreddits::parse(names).unwrap(), window: Window::parse(window).unwrap() };
            Question::new(Keyword::parse("tesla").unwrap(), Limit::DEFAULT).within(scope)
        };
        prop_assert_eq!(cache_key("m", &question(&names)), cache_key("m", &question(&shouted)));
    }

    #[test]
    fn a_window_is_one_of_six_names(raw in "\\PC{0,8}") {
        match Window::parse(&raw) {
            Ok(window) => prop_assert_eq!(window.as_str(), raw.as_str()),
            Err(e) => {
                prop_assert!(!Window::NAMES.contains(&raw.as_str()));
                prop_assert_eq!((e.field(), e.code()), ("window", "invalid_window"));
            }
        }
    }
}
