"""Writes experiment/normalization_cases.jsonl: inputs and their normalize() output.

    python3 experiment/make_normalization_cases.py

The Rust twin of normalize() is tested against this file, so both sides stay
identical. Re-run it after any change to normalize.py (and bump the version).
"""

import json
from pathlib import Path

from normalize import EMOJI_WORDS, LATIN_FOLDS, normalize

CASES = [
    "",
    "   ",
    "i feel happy",
    "I'm SO happy!!! 😂😂",
    "Don’t   worry,\tbe happy ❤️",
    "Check https://example.com/a?b=1 and (http://x.y/z) or www.Example.COM/path, ok?",
    "Read the [full story](https://news.example.org/story) here",
    "**Bold** _italic_ `code` > quote\n\n- bullet\n1. numbered",
    "Ünïcödé café naïve résumé",
    "日本語のテキスト and русский текст and العربية",
    "numbers 1234 and 3.14 and #hashtag @user u/someone r/subreddit",
    "line1\r\nline2\rline3\x0bline4\x0cline5",
    "non\u00a0breaking\u2003spaces\u200bzero width",
    "HTTPS://LOUD.URL/PATH trailing",
    "ends with url https://x.y",
    "url-in-middle-of-tokenhttp://a.b/c keeps prefix",
    "I ʼve seen it, I've done it, I’ve been there",
    "😀😃😄😁🙂😊🤣🎉😍🥰😘😢😭😞💔😠😡🤬😨😰😱😮😲🤯",
    "emoji👍🏽not👀in🦄table",
    "mixed CASE WoRdS",
    "tabs\t\tand\n\nnewlines",
    "a" * 50 + " " + "b" * 50,
    "can't won't shouldn't y'all o'clock rock'n'roll",
    "'quoted' \"double\" ‘curly’ “curly”",
    "www.",
    "http://",
    "xwww.example.com",
    "Straße Œuvre Ærø Þór ĳssel",
]


def main() -> None:
    cases = CASES + list(EMOJI_WORDS) + ["".join(LATIN_FOLDS)]
    out = Path(__file__).parent / "normalization_cases.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for text in cases:
            f.write(json.dumps({"input": text, "expected": normalize(text)}, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
