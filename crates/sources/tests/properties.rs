//! Property tests of the parsers of untrusted input (`make fuzz` runs them longer):
//! dump lines and Reddit search listings. Any bytes are answered with a value or an
//! error, never a panic; well-formed input is read exactly. The bundled corpus
//! (data/sample) is the seed of the mutation tests.

use std::sync::OnceLock;

use moodwire_sources::{parse_post_line, parse_search_page};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The sample corpus's lines: real-shaped input to mutate.
fn corpus() -> &'static [String] {
    static LINES: OnceLock<Vec<String>> = OnceLock::new();
    LINES.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/sample/posts.ndjson"
        );
        std::fs::read_to_string(path)
            .expect("the bundled sample corpus")
            .lines()
            .take(500)
            .map(String::from)
            .collect()
    })
}

/// A corpus line with bytes replaced, inserted or cut off.
fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
    (
        0..corpus().len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
    )
        .prop_map(|(line, edits)| {
            let mut bytes = corpus()[line].as_bytes().to_vec();
            for (at, byte, kind) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match kind {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => bytes.truncate(i),
                }
            }
            bytes
        })
}

/// A submission as the dumps and the API write it, `created_utc` and `score` as
/// numbers or strings.
fn item() -> impl Strategy<Value = (Value, bool)> {
    (
        "[a-z0-9]{0,8}",
        "\\PC{0,30}",
        "\\PC{0,60}",
        0i64..2_000_000_000,
        any::<bool>(),
        -100i64..100_000,
    )
        .prop_map(|(id, title, body, created, as_string, score)| {
            let created = if as_string {
                json!(created.to_string())
            } else {
                json!(created)
            };
            let readable = !id.trim().is_empty()
                && !(title.trim().is_empty()
                    && (body.trim().is_empty() || moodwire_core::is_removed(&body)));
            (
                json!({"id": id, "subreddit": "test", "author": "someone", "created_utc": created,
                       "title": title, "selftext": body, "score": score, "permalink": "/r/test"}),
                readable,
            )
        })
}

proptest! {
    #[test]
    fn any_line_gets_an_answer(line in "\\PC{0,200}") {
        let _ = parse_post_line(&line);
    }

    #[test]
    fn mutated_corpus_lines_get_an_answer(bytes in mutated_line()) {
        let _ = parse_post_line(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn well_formed_lines_are_read_exactly((value, readable) in item()) {
        match parse_post_line(&value.to_string()) {
            Ok(post) => {
                prop_assert!(readable, "accepted {value}");
                prop_assert_eq!(&post.id, value["id"].as_str().unwrap());
                prop_assert_eq!(&post.title, value["title"].as_str().unwrap());
                let created = &value["created_utc"];
                let expected = created.as_i64().or_else(|| created.as_str()?.parse().ok()).unwrap();
                prop_assert_eq!(post.created_utc, expected);
                prop_assert_eq!(post.score, value["score"].as_i64().unwrap());
            }
            Err(_) => prop_assert!(!readable, "refused {value}"),
        }
    }

    #[test]
    fn control_characters_never_enter_with_a_post(
        pieces in prop::collection::vec(("[a-z ]{0,6}", (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap())), 1..8),
        in_title in any::<bool>(),
        via_listing in any::<bool>(),
    ) {
        let dirty: String = pieces.iter().flat_map(|(text, c)| text.chars().chain([*c])).collect();
        let expected: String = dirty.chars().filter(|c| *c >= ' ' || *c == '\n' || *c == '\t').collect();
        let (title, body) = if in_title { (dirty.as_str(), "body") } else { ("title", dirty.as_str()) };
        let item = json!({"id": "p\u{0}1", "author": "a\u{1b}b", "subreddit": "s", "created_utc": 1,
                          "title": title, "selftext": body, "permalink": "/r/s/\r"});
        let post = if via_listing {
            let listing = json!({"kind": "Listing", "data": {"children": [{"kind": "t3", "data": item}]}});
            parse_search_page(listing.to_string().as_bytes()).unwrap().posts.into_iter().next()
        } else {
            parse_post_line(&item.to_string()).ok()
        };
        // A text of only control characters is no text: the post is refused then.
        let Some(post) = post else {
            prop_assert!(expected.trim().is_empty());
            return Ok(());
        };
        let texts = [&post.id, &post.author, &post.subreddit, &post.title, &post.selftext, &post.permalink];
        for text in texts {
            prop_assert!(!text.chars().any(|c| c < ' ' && c != '\n' && c != '\t'), "{text:?}");
        }
        prop_assert_eq!(if in_title { &post.title } else { &post.selftext }, &expected);
        prop_assert_eq!((post.id.as_str(), post.author.as_str(), post.permalink.as_str()), ("p1", "ab", "/r/s/"));
    }

    #[test]
    fn any_bytes_as_a_listing_get_an_answer(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_search_page(&body);
    }

    #[test]
    fn listings_keep_readable_submissions_in_order(
        items in prop::collection::vec((item(), prop_oneof![Just("t3"), Just("t1"), Just("more")]), 0..12),
        after in prop::option::of("[a-z0-9_]{0,10}"),
    ) {
        let children: Vec<Value> = items
            .iter()
            .map(|((data, _), kind)| json!({"kind": kind, "data": data}))
            .collect();
        let listing = json!({"kind": "Listing", "data": {"after": after, "children": children}});
        let page = parse_search_page(listing.to_string().as_bytes()).unwrap();
        let expected: Vec<&str> = items
            .iter()
            .filter(|((_, readable), kind)| *kind == "t3" && *readable)
            .map(|((data, _), _)| data["id"].as_str().unwrap())
            .collect();
        let ids: Vec<&str> = page.posts.iter().map(|p| p.id.as_str()).collect();
        prop_assert_eq!(ids, expected);
        let submissions = items.iter().filter(|(_, kind)| *kind == "t3").count();
        prop_assert_eq!(page.posts.len() + page.unreadable, submissions);
        prop_assert_eq!(page.items, items.len());
        prop_assert_eq!(page.after, after.filter(|a| !a.is_empty()));
    }
}
