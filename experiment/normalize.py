"""moodwire text normalization, version 1.

Real posts have capitals, punctuation, URLs, markdown, emoji and contractions
("I'm"), while the emotion training set is lowercase ASCII letters and single
spaces ("im", "i m"). This function maps any text into the training
distribution. It is applied in training and at inference; the Rust twin lives
in crates/model/src/normalize.rs and must stay byte-for-byte identical (the
parity test there runs over experiment/normalization_cases.jsonl).

Steps, in order:
1. Tokens are maximal runs of characters other than ASCII whitespace
   (space, \\t, \\n, \\v, \\f, \\r). In each token, everything from the first
   "http://", "https://" or "www." (ASCII case-insensitive) on is removed.
2. Every character in EMOJI_WORDS is replaced by " <word> "; every accented
   Latin letter in LATIN_FOLDS by its plain letters ("café" -> "cafe").
3. Apostrophes (' U+0027, ’ U+2019, ʼ U+02BC) are removed, joining the
   letters around them: "I'm" -> "im", "don't" -> "dont".
4. ASCII letters are lowercased; every other character becomes a space.
5. Runs of spaces collapse to one; leading and trailing spaces are removed.
"""

NORMALIZATION_VERSION = 1

URL_MARKERS = ("http://", "https://", "www.")
ASCII_WHITESPACE = " \t\n\x0b\x0c\r"
APOSTROPHES = "'\u2019\u02bc"

# Emoji carry much of the emotion of a post; the training text has none, so
# each common one is spelled as a word the model knows.
EMOJI_WORDS = {
    "\U0001F600": "happy",      # grinning face
    "\U0001F603": "happy",      # grinning face with big eyes
    "\U0001F604": "happy",      # grinning face with smiling eyes
    "\U0001F601": "happy",      # beaming face
    "\U0001F642": "happy",      # slightly smiling face
    "\U0001F60A": "happy",      # smiling face with smiling eyes
    "\U0001F602": "laughing",   # face with tears of joy
    "\U0001F923": "laughing",   # rolling on the floor laughing
    "\U0001F389": "celebrate",  # party popper
    "\u2764": "love",           # red heart
    "\U0001F60D": "love",       # smiling face with heart-eyes
    "\U0001F970": "love",       # smiling face with hearts
    "\U0001F618": "love",       # face blowing a kiss
    "\U0001F622": "sad",        # crying face
    "\U0001F62D": "sad",        # loudly crying face
    "\U0001F61E": "sad",        # disappointed face
    "\U0001F494": "heartbroken",  # broken heart
    "\U0001F620": "angry",      # angry face
    "\U0001F621": "angry",      # pouting face
    "\U0001F92C": "angry",      # face with symbols on mouth
    "\U0001F628": "scared",     # fearful face
    "\U0001F630": "anxious",    # anxious face with sweat
    "\U0001F631": "terrified",  # face screaming in fear
    "\U0001F62E": "surprised",  # face with open mouth
    "\U0001F632": "astonished",  # astonished face
    "\U0001F92F": "shocked",    # exploding head
}


# Accented Latin letters (Latin-1 Supplement and Latin Extended-A), spelled
# without their accents. An explicit table, not Unicode decomposition, so that
# Python and Rust agree whatever Unicode version each ships.
_FOLD_SOURCE = {
    "a": "àáâãäåāăąÀÁÂÃÄÅĀĂĄ",
    "ae": "æÆ",
    "c": "çćĉċčÇĆĈĊČ",
    "d": "ďđðĎĐÐ",
    "e": "èéêëēĕėęěÈÉÊËĒĔĖĘĚ",
    "g": "ĝğġģĜĞĠĢ",
    "h": "ĥħĤĦ",
    "i": "ìíîïĩīĭįıÌÍÎÏĨĪĬĮİ",
    "ij": "ĳĲ",
    "j": "ĵĴ",
    "k": "ķĸĶ",
    "l": "ĺļľŀłĹĻĽĿŁ",
    "n": "ñńņňŉŋÑŃŅŇŊ",
    "o": "òóôõöøōŏőÒÓÔÕÖØŌŎŐ",
    "oe": "œŒ",
    "r": "ŕŗřŔŖŘ",
    "s": "śŝşšſŚŜŞŠ",
    "ss": "ß",
    "t": "ţťŧŢŤŦ",
    "th": "þÞ",
    "u": "ùúûüũūŭůűųÙÚÛÜŨŪŬŮŰŲ",
    "w": "ŵŴ",
    "y": "ýÿŷÝŸŶ",
    "z": "źżžŹŻŽ",
}
LATIN_FOLDS = {ch: plain for plain, chars in _FOLD_SOURCE.items() for ch in chars}


def _strip_urls(text: str) -> str:
    out = []
    token = []

    def flush():
        if token:
            word = "".join(token)
            lowered = _ascii_lower(word)
            cut = min((i for i in (lowered.find(m) for m in URL_MARKERS) if i >= 0), default=-1)
            out.append(word if cut < 0 else word[:cut])
            token.clear()

    for ch in text:
        if ch in ASCII_WHITESPACE:
            flush()
            out.append(" ")
        else:
            token.append(ch)
    flush()
    return "".join(out)


def _ascii_lower(s: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def normalize(text: str) -> str:
    text = _strip_urls(text)
    chars = []
    for ch in text:
        word = EMOJI_WORDS.get(ch)
        if word is not None:
            chars.append(" " + word + " ")
        elif ch in LATIN_FOLDS:
            chars.append(LATIN_FOLDS[ch])
        elif ch in APOSTROPHES:
            continue
        elif "a" <= ch <= "z":
            chars.append(ch)
        elif "A" <= ch <= "Z":
            chars.append(chr(ord(ch) + 32))
        else:
            chars.append(" ")
    # Only ASCII letters and spaces are left, so splitting on " " is exact.
    return " ".join(part for part in "".join(chars).split(" ") if part)
