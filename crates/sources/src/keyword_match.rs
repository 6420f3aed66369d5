/// A post's text prepared for keyword search: lowercase, whitespace collapsed.
#[derive(Debug, Clone)]
pub struct SearchText(String);

impl SearchText {
    pub fn new(title: &str, body: &str) -> Self {
        let joined = format!("{title} {body}");
        SearchText(collapse_lower(&joined))
    }

    /// Case-insensitive whole-word (or whole-phrase) match: "ai" matches
    /// "AI is here" and "(AI)" but not "said" or "aim".
    pub fn contains_word(&self, normalized_keyword: &str) -> bool {
        let needle = normalized_keyword;
        if needle.is_empty() {
            return false;
        }
        let hay = self.0.as_str();
        let mut from = 0;
        while let Some(found) = hay[from..].find(needle) {
            let start = from + found;
            let end = start + needle.len();
            let before_ok = hay[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            let after_ok = hay[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
            if before_ok && after_ok {
                return true;
            }
            // Step past the first character of this match (keeping a char boundary).
            from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
        }
        false
    }
}

fn collapse_lower(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only_and_case_insensitive() {
        let t = SearchText::new("AI is everywhere", "I said (ai) again");
        assert!(t.contains_word("ai"));
        assert!(!SearchText::new("She said aim", "").contains_word("ai"));
        assert!(SearchText::new("the AI.", "").contains_word("ai"));
        assert!(SearchText::new("", "AI-generated art").contains_word("ai"));
    }

    #[test]
    fn phrases_match_across_any_whitespace() {
        let t = SearchText::new("Climate\n\nchange   talks", "");
        assert!(t.contains_word("climate change"));
        assert!(!t.contains_word("climate changes"));
    }

    #[test]
    fn unicode_is_safe() {
        let t = SearchText::new("Über café 🎉 naïve", "");
        assert!(t.contains_word("café"));
        assert!(t.contains_word("über"));
        assert!(!t.contains_word("caf"));
    }
}
