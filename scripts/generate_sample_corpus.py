#!/usr/bin/env python3
"""Writes moodwire's bundled sample corpus: data/sample/posts.ndjson.

    python3 scripts/generate_sample_corpus.py

Every post is composed here, for this project, from the hand-written phrases
below (nothing is copied from any site). Each topic of scripts/keywords.txt has
its own mix of emotions (layoffs lean sad and afraid, a phone launch leans
joyful and surprised), so an offline `moodwire analyze AI` gives a meaningful,
non-uniform breakdown. Posts are in the Pushshift submission format. The
output is deterministic (fixed seed), so re-running it changes nothing.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261101
# Posts are dated in the 90 days before this moment (2026-11-01T00:00:00Z).
END_UTC = 1793491200
POSTS_PER_TOPIC = (70, 110)
# The busiest topics have enough posts for a full default analysis (limit 250).
HOT_TOPICS = {"AI", "climate", "bitcoin", "elections", "layoffs"}
HOT_POSTS_PER_TOPIC = (280, 330)

# keyword -> (subreddit, subjects that name the keyword, emotion weights
# sadness, joy, love, anger, fear, surprise)
TOPICS = {
    "AI": ("technology", ["AI", "the new AI model", "AI at my job", "AI art", "this AI assistant", "AI in schools"], (1, 3, 1, 2, 3, 3)),
    "climate": ("environment", ["climate change", "the climate report", "climate policy", "the climate summit", "climate anxiety"], (3, 1, 1, 3, 4, 1)),
    "bitcoin": ("CryptoCurrency", ["bitcoin", "the bitcoin price", "my bitcoin savings", "bitcoin mining", "bitcoin ETFs"], (2, 3, 1, 2, 3, 3)),
    "elections": ("politics", ["the elections", "the local elections", "these elections", "the elections results", "early voting in the elections"], (2, 2, 1, 4, 3, 2)),
    "layoffs": ("jobs", ["the layoffs", "layoffs at my company", "another round of layoffs", "tech layoffs", "the layoffs email"], (5, 1, 1, 4, 4, 1)),
    "vaccines": ("Health", ["vaccines", "the new vaccines", "flu vaccines", "vaccines for kids", "the vaccines rollout"], (1, 3, 1, 2, 3, 2)),
    "iPhone": ("apple", ["the new iPhone", "my iPhone", "the iPhone launch", "the iPhone camera", "iPhone battery life"], (1, 5, 3, 2, 1, 3)),
    "World Cup": ("soccer", ["the World Cup final", "the World Cup", "our World Cup run", "the World Cup draw", "World Cup tickets"], (3, 5, 3, 2, 1, 4)),
    "inflation": ("economy", ["inflation", "grocery inflation", "the inflation numbers", "inflation this year", "rent inflation"], (3, 1, 1, 5, 3, 2)),
    "housing": ("RealEstate", ["the housing market", "housing prices", "affordable housing", "housing in this city", "the housing crisis"], (4, 2, 1, 4, 3, 1)),
    "remote work": ("remotework", ["remote work", "the end of remote work", "remote work policy", "full remote work", "remote work burnout"], (2, 4, 2, 3, 2, 1)),
    "Tesla": ("electricvehicles", ["Tesla", "my Tesla", "the Tesla recall", "Tesla stock", "the Tesla update"], (1, 3, 2, 3, 2, 3)),
    "ChatGPT": ("ChatGPT", ["ChatGPT", "ChatGPT at work", "the ChatGPT update", "ChatGPT for homework", "ChatGPT answers"], (1, 4, 2, 2, 2, 4)),
    "student loans": ("StudentLoans", ["student loans", "my student loans", "student loans forgiveness", "student loans payments", "the student loans ruling"], (4, 2, 1, 4, 4, 2)),
    "heatwave": ("weather", ["the heatwave", "this heatwave", "the heatwave warning", "another heatwave", "the heatwave at night"], (3, 1, 1, 2, 4, 2)),
    "wildfires": ("news", ["the wildfires", "wildfires near us", "the wildfires smoke", "wildfires season", "the wildfires evacuation"], (5, 1, 2, 2, 5, 1)),
    "Taylor Swift": ("TaylorSwift", ["Taylor Swift", "the Taylor Swift concert", "the new Taylor Swift album", "Taylor Swift tickets", "Taylor Swift tour"], (1, 5, 5, 1, 1, 3)),
    "Olympics": ("olympics", ["the Olympics", "the Olympics final", "watching the Olympics", "the Olympics opening ceremony", "our Olympics team"], (2, 5, 3, 1, 1, 3)),
    "NASA": ("space", ["NASA", "the NASA launch", "NASA images", "the NASA mission", "NASA budget cuts"], (1, 4, 3, 1, 1, 5)),
    "SpaceX": ("spacex", ["SpaceX", "the SpaceX launch", "the SpaceX landing", "SpaceX starship", "SpaceX test flight"], (1, 4, 2, 1, 2, 5)),
    "Netflix": ("netflix", ["Netflix", "the Netflix price hike", "a Netflix series", "Netflix password sharing", "the Netflix finale"], (2, 3, 3, 4, 1, 2)),
    "video games": ("gaming", ["video games", "the new video games", "video games prices", "video games with friends", "video games crunch"], (1, 5, 4, 2, 1, 2)),
    "minimum wage": ("antiwork", ["the minimum wage", "minimum wage jobs", "the minimum wage increase", "living on minimum wage", "minimum wage law"], (4, 2, 1, 5, 2, 1)),
    "interest rates": ("personalfinance", ["interest rates", "the interest rates decision", "mortgage interest rates", "interest rates cut", "high interest rates"], (3, 2, 1, 3, 4, 3)),
    "electric cars": ("electricvehicles", ["electric cars", "charging electric cars", "cheap electric cars", "electric cars in winter", "my first of the electric cars"], (1, 4, 3, 2, 2, 2)),
    "social media": ("socialmedia", ["social media", "quitting social media", "social media for teens", "social media algorithms", "social media drama"], (3, 2, 1, 4, 3, 1)),
    "cybersecurity": ("cybersecurity", ["cybersecurity", "the cybersecurity breach", "cybersecurity training", "a cybersecurity job", "cybersecurity at work"], (1, 2, 1, 3, 5, 3)),
    "mental health": ("mentalhealth", ["mental health", "my mental health", "mental health days", "mental health support", "mental health at school"], (5, 3, 3, 1, 3, 1)),
    "recession": ("economics", ["the recession", "a recession", "recession fears", "the recession warning", "surviving the recession"], (4, 1, 1, 3, 5, 2)),
    "Super Bowl": ("nfl", ["the Super Bowl", "the Super Bowl halftime show", "Super Bowl ads", "our Super Bowl party", "the Super Bowl ending"], (2, 5, 3, 2, 1, 4)),
}

EMOTIONS = ["sadness", "joy", "love", "anger", "fear", "surprise"]

TITLES = {
    "sadness": [
        "Feeling really down about {s}",
        "I miss how things were before {s}",
        "{S} has left me heartbroken",
        "Honestly so sad about {s} tonight",
        "Does anyone else feel hopeless about {s}?",
        "{S} just made my week a lot lonelier",
        "Lost something today because of {s}",
        "I can't stop crying over {s}",
        "Quietly grieving {s}",
        "{S} makes me feel so defeated",
    ],
    "joy": [
        "{S} made my whole day!",
        "So happy about {s} right now",
        "Finally some good news about {s} 🎉",
        "{S} is honestly the best thing this year",
        "Can't stop smiling about {s}",
        "Feeling grateful for {s} today",
        "{S} turned out amazing",
        "Best day ever thanks to {s} 😄",
        "Really pleased with {s}",
        "Small win: {s} worked out perfectly",
    ],
    "love": [
        "I absolutely love {s} ❤️",
        "{S} has my whole heart",
        "Falling in love with {s} all over again",
        "A love letter to {s}",
        "{S} is so sweet and I adore it",
        "My partner and I love {s}",
        "Can we appreciate how lovely {s} is?",
        "Fond memories of {s} with my family",
        "I cherish every moment of {s}",
        "{S} feels like a warm hug 🥰",
    ],
    "anger": [
        "I'm furious about {s}",
        "{S} is an absolute disgrace",
        "So sick and tired of {s}",
        "Who decided {s} was okay?? 😡",
        "{S} makes my blood boil",
        "Rant: {s} is a joke",
        "Stop pretending {s} is fine",
        "Outraged by {s}, honestly",
        "{S} is insulting to everyone",
        "I'm so annoyed with {s} I could scream",
    ],
    "fear": [
        "Really scared about {s}",
        "{S} is keeping me up at night",
        "Anyone else anxious about {s}?",
        "I'm terrified of what {s} means for us",
        "Worried sick about {s} 😨",
        "{S} has me panicking",
        "Nervous about {s} and what comes next",
        "Is it normal to be this afraid of {s}?",
        "{S} feels like a threat nobody talks about",
        "I'm dreading {s}",
    ],
    "surprise": [
        "Wait, {s} actually happened?!",
        "Did not expect {s} at all 😮",
        "{S} caught everyone off guard",
        "Wow, {s} is wild",
        "I'm shocked by {s}",
        "Nobody saw {s} coming",
        "{S} just blew my mind 🤯",
        "Stunned by {s} this morning",
        "Unexpected twist with {s}",
        "Can't believe {s} is real",
    ],
}

BODIES = {
    "sadness": [
        "I feel so empty whenever I think about it.",
        "It's been a rough month and this just made it heavier.",
        "My friends don't really get why it hurts so much.",
        "I keep remembering how hopeful I used to be.",
        "Some days I just feel numb and tired of all of it.",
        "I feel like I lost something I can't get back.",
        "It makes me feel so alone, honestly.",
        "I'm not angry, just really disappointed and sad.",
        "I spent the evening staring at the wall feeling miserable.",
        "Everything feels a bit gloomy since then.",
    ],
    "joy": [
        "I feel so happy and relieved, it's been a long time coming.",
        "Everyone in my family is thrilled.",
        "I'm honestly just grateful and in a great mood.",
        "Laughed the whole evening, what a great feeling.",
        "It feels like things are finally going well.",
        "I'm excited and pleased with how it went.",
        "Made me feel cheerful for the first time in weeks.",
        "Such a fun and delightful surprise for everyone involved.",
        "I'm proud of how far we've come.",
        "It's nice to feel this content for once.",
    ],
    "love": [
        "I love sharing it with the people I care about.",
        "It reminds me of my grandma and I adore that.",
        "My heart feels so full and warm.",
        "I feel so loving and tender about the whole thing.",
        "Honestly it's the sweetest thing and I'm so fond of it.",
        "I'm sentimental about it and I don't care who knows.",
        "It makes me feel so caring towards everyone around me.",
        "I just want to hug everyone who made it happen.",
        "I feel so affectionate and nostalgic about it.",
        "It's a beloved part of my life now.",
    ],
    "anger": [
        "I am so angry and fed up with how this is handled.",
        "It's outrageous that nobody is held responsible.",
        "I feel cheated and honestly really bitter.",
        "Every time I read about it I get more irritated.",
        "This is greedy and selfish and everyone knows it.",
        "I'm done being polite about it, I'm furious.",
        "It's insulting how they treat regular people.",
        "I feel so resentful and annoyed right now.",
        "Stop lying to us, it's infuriating.",
        "I'm mad and I think everyone should be.",
    ],
    "fear": [
        "I'm scared it's only going to get worse.",
        "My anxiety has been through the roof.",
        "I feel so nervous and unsure about what happens next.",
        "It's frightening how fast things are changing.",
        "I keep worrying about my family and my future.",
        "I feel helpless and afraid, and I can't shake it.",
        "I'm terrified and I don't know who to talk to.",
        "Honestly I feel really insecure and shaky about it.",
        "Every news alert makes me panic a little.",
        "I feel threatened and worried all the time now.",
    ],
    "surprise": [
        "I'm amazed, I genuinely did not see this coming.",
        "I was shocked when I read it this morning.",
        "It's so strange and unexpected, I'm still processing.",
        "I'm stunned, everyone around me is surprised too.",
        "It's curious how quickly it all turned around.",
        "I was totally astonished by the numbers.",
        "What a weird twist, I'm impressed and confused at once.",
        "I feel so curious about what happens next.",
        "Honestly I'm amazed nobody predicted it.",
        "I had to read it twice, it's that surprising.",
    ],
}

NEUTRAL_DETAILS = [
    "Posting here because I don't know where else to talk about {s}.",
    "Long time lurker, first post about {s}.",
    "Curious what this sub thinks about {s}.",
    "More details in the thread: https://example.org/{slug}",
    "**Edit:** thanks for all the replies about {s}.",
    "TL;DR: {s}, and I have feelings about it.",
    "Here's the article if you want context: [link](https://news.example.com/{slug})",
    "",
    "",
    "",
]

NAME_PARTS = ["quiet", "blue", "river", "pixel", "night", "maple", "sunny", "static", "paper", "lunar",
              "coffee", "north", "velvet", "tiny", "brave", "cedar", "echo", "salt", "amber", "fox"]


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:50]


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def compose(rng: random.Random, keyword: str, subjects: list[str], emotion: str) -> tuple[str, str]:
    subject = rng.choice(subjects)
    title = rng.choice(TITLES[emotion]).format(s=subject, S=subject[0].upper() + subject[1:])
    sentences = rng.sample(BODIES[emotion], k=rng.randint(0, 3))
    detail = rng.choice(NEUTRAL_DETAILS).format(s=subject, slug=slugify(subject))
    if detail:
        sentences.insert(rng.randint(0, len(sentences)), detail)
    if rng.random() < 0.15:
        sentences = [s.lower() for s in sentences]
    return title, " ".join(sentences)


def main() -> None:
    rng = random.Random(SEED)
    keywords = [line.strip() for line in (ROOT / "scripts" / "keywords.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    missing = [k for k in keywords if k not in TOPICS]
    if missing:
        raise SystemExit(f"no phrases written for keywords: {missing}")
    authors = [f"{a}_{b}{rng.randint(1, 99)}" for a in NAME_PARTS for b in NAME_PARTS if a != b]
    posts, next_id = [], 36**5
    for keyword in keywords:
        subreddit, subjects, weights = TOPICS[keyword]
        size = HOT_POSTS_PER_TOPIC if keyword in HOT_TOPICS else POSTS_PER_TOPIC
        for _ in range(rng.randint(*size)):
            emotion = rng.choices(EMOTIONS, weights=weights)[0]
            title, body = compose(rng, keyword, subjects, emotion)
            next_id += rng.randint(1, 5000)
            post_id = base36(next_id)
            posts.append({
                "id": post_id,
                "subreddit": subreddit,
                "author": rng.choice(authors),
                "created_utc": END_UTC - rng.randint(0, 90 * 86400),
                "title": title,
                "selftext": body,
                "score": int(rng.paretovariate(1.2)) - 1,
                "permalink": f"/r/{subreddit}/comments/{post_id}/{slugify(title)}/",
            })
    posts.sort(key=lambda p: -p["created_utc"])
    out = ROOT / "data" / "sample" / "posts.ndjson"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for p in posts:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    print(f"wrote {len(posts)} posts about {len(keywords)} keywords to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
