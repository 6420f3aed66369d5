//! moodwire text normalization, version 1: the Rust twin of
//! `experiment/normalize.py`, which documents the steps. The model was trained
//! on text in this form, so inference must apply exactly the same function;
//! the parity test runs both over `experiment/normalization_cases.jsonl`.

/// Must equal `normalization_version` in the model's config.json.
pub const NORMALIZATION_VERSION: u32 = 1;

const URL_MARKERS: [&str; 3] = ["http://", "https://", "www."];

/// Maps any post text into the training distribution: lowercase ASCII words
/// separated by single spaces.
pub fn normalize(text: &str) -> String {
    let without_urls = strip_urls(text);
    let mut spelled = String::with_capacity(without_urls.len());
    for ch in without_urls.chars() {
        if let Some(word) = emoji_word(ch) {
            spelled.push(' ');
            spelled.push_str(word);
            spelled.push(' ');
        } else if let Some(plain) = latin_fold(ch) {
            spelled.push_str(plain);
        } else if is_apostrophe(ch) {
            // "I'm" -> "im", as the training text writes it.
        } else if ch.is_ascii_alphabetic() {
            spelled.push(ch.to_ascii_lowercase());
        } else {
            spelled.push(' ');
        }
    }
    spelled
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Python's `" \t\n\x0b\x0c\r"`: Rust's `is_ascii_whitespace` lacks `\x0b`.
fn is_token_separator(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// In each whitespace-separated token, drops everything from the first URL marker on.
fn strip_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token_start = 0;
    for (i, ch) in text.char_indices() {
        if is_token_separator(ch) {
            out.push_str(cut_at_url(&text[token_start..i]));
            out.push(' ');
            token_start = i + ch.len_utf8();
        }
    }
    out.push_str(cut_at_url(&text[token_start..]));
    out
}

fn cut_at_url(token: &str) -> &str {
    // ASCII lowercasing keeps byte offsets, so positions found in `lowered` apply to `token`.
    let lowered = token.to_ascii_lowercase();
    let cut = URL_MARKERS.iter().filter_map(|m| lowered.find(m)).min();
    match cut {
        Some(at) => &token[..at],
        None => token,
    }
}

fn is_apostrophe(ch: char) -> bool {
    matches!(ch, '\'' | '\u{2019}' | '\u{02BC}')
}

/// Emoji carry much of a post's emotion; the training text has none, so the
/// common ones are spelled as words the model knows.
fn emoji_word(ch: char) -> Option<&'static str> {
    Some(match ch {
        '\u{1F600}' | '\u{1F603}' | '\u{1F604}' | '\u{1F601}' | '\u{1F642}' | '\u{1F60A}' => {
            "happy"
        }
        '\u{1F602}' | '\u{1F923}' => "laughing",
        '\u{1F389}' => "celebrate",
        '\u{2764}' | '\u{1F60D}' | '\u{1F970}' | '\u{1F618}' => "love",
        '\u{1F622}' | '\u{1F62D}' | '\u{1F61E}' => "sad",
        '\u{1F494}' => "heartbroken",
        '\u{1F620}' | '\u{1F621}' | '\u{1F92C}' => "angry",
        '\u{1F628}' => "scared",
        '\u{1F630}' => "anxious",
        '\u{1F631}' => "terrified",
        '\u{1F62E}' => "surprised",
        '\u{1F632}' => "astonished",
        '\u{1F92F}' => "shocked",
        _ => return None,
    })
}

/// Accented Latin letters (Latin-1 Supplement, Latin Extended-A) without their
/// accents: an explicit table, like Python's, so both agree on every Unicode version.
fn latin_fold(ch: char) -> Option<&'static str> {
    const FOLDS: [(&str, &str); 24] = [
        ("a", "àáâãäåāăąÀÁÂÃÄÅĀĂĄ"),
        ("ae", "æÆ"),
        ("c", "çćĉċčÇĆĈĊČ"),
        ("d", "ďđðĎĐÐ"),
        ("e", "èéêëēĕėęěÈÉÊËĒĔĖĘĚ"),
        ("g", "ĝğġģĜĞĠĢ"),
        ("h", "ĥħĤĦ"),
        ("i", "ìíîïĩīĭįıÌÍÎÏĨĪĬĮİ"),
        ("ij", "ĳĲ"),
        ("j", "ĵĴ"),
        ("k", "ķĸĶ"),
        ("l", "ĺļľŀłĹĻĽĿŁ"),
        ("n", "ñńņňŉŋÑŃŅŇŊ"),
        ("o", "òóôõöøōŏőÒÓÔÕÖØŌŎŐ"),
        ("oe", "œŒ"),
        ("r", "ŕŗřŔŖŘ"),
        ("s", "śŝşšſŚŜŞŠ"),
        ("ss", "ß"),
        ("t", "ţťŧŢŤŦ"),
        ("th", "þÞ"),
        ("u", "ùúûüũūŭůűųÙÚÛÜŨŪŬŮŰŲ"),
        ("w", "ŵŴ"),
        ("y", "ýÿŷÝŸŶ"),
        ("z", "źżžŹŻŽ"),
    ];
    if ch.is_ascii() || !('\u{C0}'..='\u{17F}').contains(&ch) {
        return None;
    }
    FOLDS
        .iter()
        .find(|(_, accented)| accented.contains(ch))
        .map(|(plain, _)| *plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_python_reference_on_every_case() {
        let cases = include_str!("../../../experiment/normalization_cases.jsonl");
        let mut checked = 0;
        for line in cases.lines().filter(|l| !l.trim().is_empty()) {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let input = case["input"].as_str().unwrap();
            let expected = case["expected"].as_str().unwrap();
            assert_eq!(normalize(input), expected, "input {input:?}");
            checked += 1;
        }
        assert!(checked >= 50, "only {checked} cases");
    }

    #[test]
    fn real_post_text_reaches_the_training_form() {
        assert_eq!(normalize("I'm SO excited!!! 😂"), "im so excited laughing");
        assert_eq!(normalize("See https://example.com."), "see");
        assert_eq!(normalize("Café naïve"), "cafe naive");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("日本語"), "");
    }

    #[test]
    fn huge_text_is_linear_and_bounded_by_its_input() {
        let text = "Word, ".repeat(2_000);
        let out = normalize(&text);
        assert_eq!(out.len(), "word ".len() * 2_000 - 1);
    }
}
