"""The bundled corpus: short, simple English stories written by a program of this project.

Chapter 3 explains the choice. A model of a million parameters cannot learn the
whole of English, but it can learn a narrow language well: Eldan & Li (2023,
"TinyStories: How Small Can Language Models Be and Still Speak Coherent
English?") showed that very small models write fluent text when the training
stories use the vocabulary of a young child. We cannot download their data here,
so :func:`generate_stories` writes stories in that spirit from hand-written
parts (characters, places, things, plots) with a seeded random generator. The
text is the project's own and is dedicated to the public domain (CC0); see
``llmlab/corpus/SOURCE.md``.

The shipped file ``llmlab/corpus/stories.txt.gz`` is exactly
``"\\n\\n".join(generate_stories(CORPUS_STORIES, seed=CORPUS_SEED))``; a test
regenerates it and compares bytes.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

from . import _checks

CORPUS_DIR = Path(__file__).parent / "corpus"
CORPUS_FILE = CORPUS_DIR / "stories.txt.gz"
CORPUS_SEED = 2023
CORPUS_STORIES = 10_000
STORY_SEPARATOR = "\n\n"
VALIDATION_FRACTION = 0.05

# ---------------------------------------------------------------------------
# The parts stories are made of. Every word a story can use appears below.
# ---------------------------------------------------------------------------
GIRLS = ["Lily", "Mia", "Anna", "Zoe", "Ella", "Lucy", "Sara", "Emma", "Rosie", "Amy", "Kate", "Jane"]
BOYS = ["Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Tim", "Finn", "Joe", "Bob", "Dan"]
ANIMALS = [
    ("cat", "fluffy"), ("dog", "happy"), ("bird", "little"), ("rabbit", "white"), ("bear", "big"),
    ("fox", "clever"), ("frog", "green"), ("duck", "yellow"), ("mouse", "tiny"), ("owl", "wise"),
    ("pig", "pink"), ("lion", "brave"), ("fish", "shiny"), ("turtle", "slow"), ("squirrel", "busy"),
]
ANIMAL_NAMES = ["Pip", "Spot", "Fluffy", "Bubbles", "Coco", "Sunny", "Momo", "Tiny", "Rex", "Daisy"]
PLACES = [
    ("park", "in the park"), ("garden", "in the garden"), ("forest", "in the forest"),
    ("beach", "at the beach"), ("farm", "on the farm"), ("river", "by the river"),
    ("hill", "on the hill"), ("kitchen", "in the kitchen"), ("school", "at school"),
    ("town", "in the town"), ("lake", "by the lake"), ("yard", "in the yard"),
]
THINGS = [
    ("ball", "red"), ("kite", "blue"), ("hat", "big"), ("box", "small"), ("cake", "sweet"),
    ("boat", "toy"), ("book", "old"), ("flower", "pretty"), ("shell", "shiny"), ("apple", "red"),
    ("car", "little"), ("drum", "loud"), ("doll", "soft"), ("cup", "blue"), ("key", "gold"),
    ("stone", "smooth"), ("bell", "tiny"), ("balloon", "yellow"), ("train", "toy"), ("sock", "warm"),
]
FOODS = ["cookies", "soup", "bread", "apples", "pie", "cake", "berries", "carrots", "milk", "honey"]
SHARED_FOODS = ["cookies", "apples", "berries", "carrots", "grapes", "cherries", "nuts"]
GAMES = ["tag", "hide and seek", "catch", "a game with a ball", "a jumping game"]
FEELINGS_GOOD = ["happy", "glad", "proud", "excited", "calm"]
FEELINGS_BAD = ["sad", "scared", "worried", "angry", "upset"]
WEATHER = ["sunny", "warm", "windy", "cold", "bright"]
TIMES = ["One day", "One morning", "One sunny day", "One evening", "Once upon a time", "Long ago"]


class _Character:
    """A story's character: a name, what it is, and the pronouns that refer to it."""

    def __init__(self, rng: random.Random, avoid: set[str] = frozenset()) -> None:
        roll = rng.random()
        if roll < 0.35:
            self.name = _pick(rng, GIRLS, avoid)
            self.kind, self.adj = "girl", rng.choice(["little", "kind", "happy", "curious", "brave"])
            self.he, self.him, self.his = "she", "her", "her"
        elif roll < 0.7:
            self.name = _pick(rng, BOYS, avoid)
            self.kind, self.adj = "boy", rng.choice(["little", "kind", "happy", "curious", "brave"])
            self.he, self.him, self.his = "he", "him", "his"
        else:
            self.kind, self.adj = rng.choice(ANIMALS)
            self.name = _pick(rng, ANIMAL_NAMES, avoid)
            if rng.random() < 0.5:
                self.he, self.him, self.his = "she", "her", "her"
            else:
                self.he, self.him, self.his = "he", "him", "his"

    @property
    def He(self) -> str:  # noqa: N802 - reads like the sentence it builds
        return self.he.capitalize()

    @property
    def His(self) -> str:  # noqa: N802
        return self.his.capitalize()

    def intro(self, rng: random.Random) -> str:
        article = "an" if self.adj[0] in "aeiou" else "a"
        return rng.choice([
            f"there was {article} {self.adj} {self.kind} named {self.name}.",
            f"there was {article} {self.adj} {self.kind}. {self.His} name was {self.name}.",
            f"{article} {self.adj} {self.kind} named {self.name} lived near a {rng.choice(PLACES)[0]}.",
        ])


def _pick(rng: random.Random, options: list[str], avoid: set[str]) -> str:
    choices = [o for o in options if o not in avoid]
    return rng.choice(choices)


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _opening(rng: random.Random, hero: _Character) -> list[str]:
    time = rng.choice(TIMES)
    return [f"{time}, {hero.intro(rng)}"]


def _lost_and_found(rng, hero, friend, place, thing) -> list[str]:
    name, adj = thing
    where, spot = place
    hidden = rng.choice(["under a tree", "behind a big rock", "in the tall grass", "under the bed",
                         "in a small hole", "next to the door", "under some leaves"])
    return [
        f"{hero.name} had {_a(adj)} {name}. {hero.He} loved {hero.his} {name} very much.",
        f"{hero.He} took the {name} to the {where} to play.",
        f"But when it was time to go home, the {name} was gone!",
        f"{hero.name} felt {rng.choice(FEELINGS_BAD)}. \"Where is my {name}?\" {hero.he} cried.",
        f"{friend.name} the {friend.kind} saw {hero.him} and came to help.",
        f"\"Do not be sad. I will help you look,\" said {friend.name}.",
        f"They looked everywhere {spot}. At last, {friend.name} found the {name} {hidden}.",
        f"{hero.name} was so {rng.choice(FEELINGS_GOOD)}. \"Thank you, {friend.name}!\" {hero.he} said.",
        rng.choice([
            f"From that day on, {hero.name} and {friend.name} were best friends.",
            f"Then they played with the {name} together until the sun went down.",
            f"{hero.name} gave {friend.name} a big hug, and they went home together.",
        ]),
    ]


def _sharing(rng, hero, friend, place, thing) -> list[str]:
    food = rng.choice(SHARED_FOODS)
    where, spot = place
    return [
        f"{hero.name} had a lot of {food}. {hero.He} wanted to eat them all.",
        f"{hero.He} went to the {where} with {hero.his} {food}.",
        f"{spot.capitalize()}, {hero.he} met {friend.name} the {friend.kind}.",
        f"{friend.name} looked at the {food}. {friend.He} was very hungry.",
        f"\"Can I have some {food}, please?\" asked {friend.name}.",
        rng.choice([
            f"At first, {hero.name} said no. But then {hero.he} saw that {friend.name} was {rng.choice(FEELINGS_BAD)}.",
            f"{hero.name} thought for a moment. Then {hero.he} smiled.",
        ]),
        f"\"Yes, we can share,\" said {hero.name}. {hero.He} gave {friend.name} half of the {food}.",
        f"They sat together and ate the {food}. The {food} tasted even better with a friend.",
        rng.choice([
            "Sharing made them both happy.",
            f"{hero.name} learned that sharing is good.",
            f"After that, {hero.name} always shared with {hero.his} friends.",
        ]),
    ]


def _new_thing(rng, hero, friend, place, thing) -> list[str]:
    task, fail, win = rng.choice([
        ("climb the big tree", "slipped and fell down", "climbed all the way to the top"),
        ("swim in the lake", "was afraid of the cold water", "swam to the other side"),
        ("ride a bike", "fell off the bike", "rode the bike all the way home"),
        ("fly a kite", "could not make the kite go up", "made the kite fly high in the sky"),
        ("jump over the stream", "landed in the water", "jumped over the stream"),
        ("bake a cake", "made a big mess", "baked a sweet cake"),
    ])
    return [
        f"{hero.name} wanted to {task}. But {hero.he} had never done it before.",
        f"The first time, {hero.he} {fail}. {hero.He} felt {rng.choice(FEELINGS_BAD)}.",
        f"{friend.name} the {friend.kind} said, \"Do not give up. Try again!\"",
        f"So {hero.name} tried again, and again. Every time, {hero.he} did a little better.",
        f"At last, {hero.name} {win}!",
        f"\"I did it!\" {hero.he} shouted. {friend.name} clapped and laughed.",
        rng.choice([
            f"{hero.name} learned that trying again is how we learn.",
            f"{hero.name} was very {rng.choice(FEELINGS_GOOD)} of {hero.him}self.",
            "That night, they both slept with big smiles.",
        ]),
    ]


def _rainy_day(rng, hero, friend, place, thing) -> list[str]:
    where, spot = place
    game = rng.choice(GAMES)
    return [
        f"The sky was {rng.choice(WEATHER)}, so {hero.name} went to the {where} to play {game}.",
        f"{friend.name} the {friend.kind} came to play too.",
        "Then big dark clouds came. Soon it started to rain.",
        f"\"Oh no! Our game!\" said {hero.name}.",
        rng.choice([
            "They ran home and played inside. They built a fort with boxes and blankets.",
            "They found a big tree and sat under it. They told each other stories while the rain fell.",
            "They jumped in the puddles and laughed. They got very wet, but they did not mind.",
        ]),
        "When the rain stopped, they saw a big rainbow in the sky.",
        rng.choice([
            "It was the best day ever.",
            f"\"Rain can be fun too,\" said {friend.name}.",
            f"{hero.name} and {friend.name} smiled at the rainbow.",
        ]),
    ]


def _helping(rng, hero, friend, place, thing) -> list[str]:
    where, spot = place
    trouble, fix = rng.choice([
        ("had a hurt wing and could not fly", "kept the bird warm and gave it water until its wing was better"),
        ("was stuck in a tree and could not get down", "got a long stick and helped it climb down"),
        ("was lost and could not find its mom", "walked with it until they found its mom"),
        ("was cold and wet from the rain", "gave it a warm blanket and some food"),
    ])
    animal = rng.choice(["bird", "kitten", "puppy", "duck", "bunny"])
    if "wing" in trouble:
        animal = "bird"
    return [
        f"{hero.name} was walking {spot} with {friend.name} the {friend.kind}.",
        f"They heard a small sound. It was a little {animal}.",
        f"The {animal} {trouble}.",
        f"\"We must help it,\" said {hero.name}. {friend.name} agreed.",
        f"So they {fix}.",
        f"The {animal} was {rng.choice(FEELINGS_GOOD)}. It looked at them with big eyes.",
        rng.choice([
            f"{hero.name} and {friend.name} felt warm inside. Helping others is a good thing to do.",
            f"After that, the {animal} came to visit them every day.",
            f"They waved goodbye to the {animal}, and it waved back.",
        ]),
    ]


def _fear(rng, hero, friend, place, thing) -> list[str]:
    fear, truth = rng.choice([
        ("the dark", "In the light, they saw that it was only a coat on a chair."),
        ("a big dog", "The dog only wanted to play. It wagged its tail and licked their hands."),
        ("a loud noise", "It was only the wind, and a door that went bang."),
        ("a shadow on the wall", "It was only the shadow of a tree outside the window."),
    ])
    return [
        f"{hero.name} was afraid of {fear}.",
        f"One night, {hero.he} saw something strange. {hero.He} felt very {rng.choice(FEELINGS_BAD)}.",
        f"{hero.He} called {hero.his} friend {friend.name} the {friend.kind}.",
        f"\"Let us look together,\" said {friend.name}. \"Things are not so scary when you are not alone.\"",
        f"They held hands and went to see. {truth}",
        f"{hero.name} laughed. \"I was scared of nothing!\" {hero.he} said.",
        rng.choice([
            f"From then on, {hero.name} was not afraid of {fear}.",
            f"{hero.name} learned to be brave, with a little help from a friend.",
        ]),
    ]


def _gift(rng, hero, friend, place, thing) -> list[str]:
    name, adj = thing
    return [
        f"It was {friend.name}'s birthday. {hero.name} wanted to give {friend.name} a gift.",
        f"But {hero.name} had no money. {hero.He} thought and thought.",
        rng.choice([
            f"Then {hero.he} had an idea. {hero.He} made a card with a big {rng.choice(['sun', 'star', 'heart', 'tree'])} on it.",
            f"Then {hero.he} had an idea. {hero.He} picked some pretty flowers.",
            f"Then {hero.he} had an idea. {hero.He} gave {friend.name} {hero.his} {adj} {name}.",
        ]),
        f"{friend.name} the {friend.kind} was so {rng.choice(FEELINGS_GOOD)}. \"This is the best gift!\" {friend.he} said.",
        f"\"A gift from the heart is the best gift of all,\" said {friend.name}'s mom.",
        f"They ate cake and played {rng.choice(GAMES)} all day.",
    ]


def _race(rng, hero, friend, place, thing) -> list[str]:
    where, spot = place
    return [
        f"{hero.name} and {friend.name} the {friend.kind} liked to race.",
        f"\"I am the fastest!\" said {friend.name}. \"Let us race to the big tree {spot}.\"",
        f"They started to run. {friend.name} ran very fast and was far ahead.",
        rng.choice([
            f"But {friend.name} stopped to look at a pretty flower, and then {friend.he} sat down to rest.",
            f"But {friend.name} stopped to eat some {rng.choice(FOODS)}, and then {friend.he} fell asleep.",
        ]),
        f"{hero.name} did not stop. {hero.He} kept going, step by step.",
        f"When {friend.name} woke up, {hero.name} was already at the tree!",
        rng.choice([
            "Slow and steady wins the race.",
            f"{friend.name} laughed and said, \"You won, {hero.name}. You never gave up.\"",
            "After that, they raced every day, and they always had fun.",
        ]),
    ]


def _treasure(rng, hero, friend, place, thing) -> list[str]:
    where, spot = place
    found = rng.choice(["a box of old toys", "a shiny gold coin", "a letter from long ago",
                        "a little bell", "a map of the town", "a bag of seeds"])
    return [
        f"{hero.name} found an old map {spot}. On the map there was a big red X.",
        f"\"It is a treasure map!\" {hero.he} said. {hero.He} ran to get {friend.name} the {friend.kind}.",
        f"They walked past the {rng.choice(PLACES)[0]} and over a little bridge.",
        "At last, they came to the X. They began to dig and dig.",
        f"Under the ground they found {found}.",
        rng.choice([
            f"It was not gold, but they were very {rng.choice(FEELINGS_GOOD)}. The best treasure was the fun they had.",
            f"They took it home and showed it to {hero.his} mom. She smiled and told them a story about it.",
            "They put it back in the ground for the next friends to find.",
        ]),
    ]


def _new_friend(rng, hero, friend, place, thing) -> list[str]:
    name, adj = thing
    return [
        f"A new {friend.kind} came to {hero.name}'s school. {friend.His} name was {friend.name}.",
        f"{friend.name} was shy and sat alone. {friend.He} looked {rng.choice(FEELINGS_BAD)}.",
        f"{hero.name} saw {friend.name} and walked over. \"Hi, I am {hero.name}. Do you want to play?\"",
        f"{friend.name} smiled a little. \"Yes, please,\" {friend.he} said.",
        f"They played with {hero.name}'s {adj} {name} and then they played {rng.choice(GAMES)}.",
        rng.choice([
            f"Soon {friend.name} was not shy any more. {friend.He} had a new friend.",
            f"At the end of the day, {friend.name} said, \"Thank you for being my friend.\"",
            f"From that day on, {hero.name} and {friend.name} sat together every day.",
        ]),
    ]


def _cooking(rng, hero, friend, place, thing) -> list[str]:
    food = rng.choice(["cake", "soup", "bread", "pie", "stew"])
    steps = rng.sample(["mixed the flour and the milk", "cut the apples", "put in some honey",
                        "added a little salt", "stirred the pot", "washed the carrots"], 2)
    return [
        f"{hero.name} wanted to make {food} for {hero.his} family.",
        f"{hero.His} friend {friend.name} the {friend.kind} came to help {hero.him} in the kitchen.",
        f"First they {steps[0]}. Then they {steps[1]}.",
        rng.choice([
            f"Oh no! They made a big mess. There was flour on the floor and on {friend.name}'s nose!",
            "They waited and waited. The kitchen smelled so good.",
        ]),
        f"At last, the {food} was ready. Everyone sat down to eat.",
        f"\"This is the best {food} I have ever had,\" said {hero.his} dad.",
        rng.choice([
            f"{hero.name} and {friend.name} felt very {rng.choice(FEELINGS_GOOD)}.",
            "Cooking together is fun, and eating together is even better.",
        ]),
    ]


SCENES = [
    "The sun was shining and the birds were singing.",
    "The sky was blue and there was a soft wind.",
    "It was a cold day, and the leaves were falling from the trees.",
    "Everything was quiet, and the grass was wet.",
    "It was a warm day, and the flowers were in bloom.",
    "There were big white clouds in the sky.",
]


PLOTS = [_lost_and_found, _sharing, _new_thing, _rainy_day, _helping, _fear, _gift,
         _race, _treasure, _new_friend, _cooking]


def generate_story(rng: random.Random) -> str:
    """Write one short story with ``rng``: an opening, perhaps a scene, and one of the plots."""
    _checks.rng("rng", rng)
    hero = _Character(rng)
    friend = _Character(rng, avoid={hero.name})
    place, thing = rng.choice(PLACES), rng.choice(THINGS)
    plot = rng.choice(PLOTS)
    sentences = _opening(rng, hero)
    if rng.random() < 0.4:
        sentences.append(rng.choice(SCENES))
    sentences += plot(rng, hero, friend, place, thing)
    return " ".join(sentences)


def generate_stories(n: int, seed: int = CORPUS_SEED) -> list[str]:
    """Return ``n`` stories written with a generator seeded by ``seed`` (same seed, same stories)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    return [generate_story(rng) for _ in range(n)]


def write_corpus(path: Path = CORPUS_FILE, n: int = CORPUS_STORIES, seed: int = CORPUS_SEED) -> Path:
    """Write the corpus file (gzip, deterministic bytes) and return its path."""
    if not isinstance(path, (str, Path)):
        raise _checks.ArgumentTypeError(f"path must be a file path (str or Path), got {type(path).__name__} {path!r:.60}")
    path = Path(path)
    n = _checks.positive_int("n", n)
    text = STORY_SEPARATOR.join(generate_stories(n, seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.encode("utf-8"))
    return path


def load_corpus(split: str = "all") -> list[str]:
    """The bundled stories as a list of strings: split "train" (95%), "validation" (the last 5%) or "all"."""
    allowed = ("all", "train", "validation")
    if split not in allowed:
        raise ValueError(f"split must be one of {allowed}, got {split!r}")
    with gzip.open(CORPUS_FILE, "rt", encoding="utf-8") as f:
        stories = f.read().split(STORY_SEPARATOR)
    n_val = int(len(stories) * VALIDATION_FRACTION)
    if split == "train":
        return stories[: len(stories) - n_val]
    if split == "validation":
        return stories[len(stories) - n_val:]
    return stories


def corpus_vocabulary(stories: list[str] | None = None) -> set[str]:
    """Lower-cased words (letters and apostrophes only) that occur in ``stories`` (default: the corpus)."""
    if stories is not None:
        _checks.strings("stories", stories, allow_empty=True)
    import re

    stories = load_corpus("all") if stories is None else stories
    return {w for s in stories for w in re.findall(r"[a-z']+", s.lower())}


# ---------------------------------------------------------------------------
# The in-context task family of chapter 4.
#
# Every "review" is a short sentence built from three independent choices: an
# opinion word (positive or negative), a subject (food or music) and whether it
# says "very". A labelling *rule* reads one of the three, and the two *label
# words* are drawn afresh from LABEL_POOL for every episode, in a random order.
# The query never says which rule or which words are in force, so without
# demonstrations (or an instruction that states them) the best possible accuracy
# is chance, 50%: this is true by construction, not a property of any model.
# ---------------------------------------------------------------------------
ICL_POSITIVE = ["good", "great", "tasty"]
ICL_NEGATIVE = ["bad", "awful", "dull"]
ICL_FOOD = ["soup", "pizza", "cake", "bread"]
ICL_MUSIC = ["song", "band", "album", "show"]
ICL_EMPHASIS = "very"
LABEL_POOL = ["red", "blue", "green", "gold", "up", "down", "left", "right",
              "yes", "no", "sun", "moon", "cat", "dog", "one", "two"]
# rule name -> (what the rule reads, how the instruction names class 0 and class 1)
ICL_RULES: dict[str, tuple[str, tuple[str, str]]] = {
    "sentiment": ("positive", ("positive", "negative")),
    "topic": ("food", ("about food", "about music")),
    "emphasis": ("very", ("says very", "does not say very")),
}


def icl_review(rng: random.Random) -> tuple[str, dict[str, int]]:
    """One short review and its class under every rule (0 or 1, the order of ICL_RULES' classes).

    Chapter 4. The three features are drawn independently with probability 1/2 each,
    so knowing the class under one rule says nothing about the class under another.
    """
    _checks.rng("rng", rng)
    positive, food, very = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5
    opinion = rng.choice(ICL_POSITIVE if positive else ICL_NEGATIVE)
    subject = rng.choice(ICL_FOOD if food else ICL_MUSIC)
    text = f"the {subject} was {ICL_EMPHASIS + ' ' if very else ''}{opinion}"
    return text, {"sentiment": 0 if positive else 1, "topic": 0 if food else 1, "emphasis": 0 if very else 1}


def icl_classes(review: str) -> dict[str, int]:
    """The class (0 or 1) of a review of :func:`icl_review` under every rule, read back from its words."""
    _checks.string("review", review)
    words = review.split()
    if len(words) not in (4, 5) or words[0] != "the" or words[2] != "was" or words[1] not in ICL_FOOD + ICL_MUSIC \
            or words[-1] not in ICL_POSITIVE + ICL_NEGATIVE or (len(words) == 5 and words[3] != ICL_EMPHASIS):
        raise ValueError(f"not a review of the task family (the SUBJECT was [very] OPINION): {review!r}")
    return {"sentiment": 0 if words[-1] in ICL_POSITIVE else 1, "topic": 0 if words[1] in ICL_FOOD else 1,
            "emphasis": 0 if len(words) == 5 else 1}


def icl_instruction(rule: str, labels: tuple[str, str]) -> str:
    """The sentence that states ``rule`` and its label words in words (the instruction of chapter 4)."""
    if rule not in ICL_RULES:
        raise ValueError(f"rule must be one of {sorted(ICL_RULES)}, got {rule!r}")
    if isinstance(labels, str) or not isinstance(labels, (tuple, list)) or len(labels) != 2 \
            or not all(isinstance(w, str) for w in labels):
        raise _checks.ArgumentTypeError(f"labels must be a pair of label words (str, str), e.g. ('red', 'blue'); "
                                        f"got {type(labels).__name__} {labels!r:.60}")
    first, second = ICL_RULES[rule][1]
    if rule == "emphasis":  # "if the review says very", not "if the review is says very"
        return f"Say {labels[0]} if the review {first} and {labels[1]} if it {second}."
    return f"Say {labels[0]} if the review is {first} and {labels[1]} if it is {second}."


def icl_episode(rng: random.Random, n_items: int, rule: str | None = None,
                labels: tuple[str, str] | None = None, repeat: float = 0.0) -> dict:
    """One episode of the task family: a rule, two label words and ``n_items`` labelled reviews.

    Chapter 4. ``rule`` and ``labels`` are drawn from ``rng`` when not given (the
    rule uniformly from ICL_RULES, the two label words without replacement from
    LABEL_POOL, so which word names which class is random too). Returns a dict with
    ``rule``, ``labels`` (label word of class 0, of class 1), ``instruction`` and
    ``items``: a list of (review, label word) pairs. With probability ``repeat`` an item
    after the first repeats the review of an earlier item (a "bursty" episode, which the
    ``icl-*`` recipes train on; Chan et al. 2022 found such repeats help in-context
    learning appear). The default, 0, draws every review afresh.
    """
    _checks.rng("rng", rng)
    if not 0.0 <= repeat < 1.0:
        raise ValueError(f"repeat must be a probability in [0, 1), got {repeat!r}")
    if not isinstance(n_items, int) or n_items < 1:
        raise ValueError(f"n_items must be a positive int, got {n_items!r}")
    if rule is None:
        rule = rng.choice(sorted(ICL_RULES))
    elif rule not in ICL_RULES:
        raise ValueError(f"rule must be one of {sorted(ICL_RULES)}, got {rule!r}")
    if labels is None:
        labels = tuple(rng.sample(LABEL_POOL, 2))
    elif len(labels) != 2 or labels[0] == labels[1]:
        raise ValueError(f"labels must be two different words, got {labels!r}")
    items = []
    for i in range(n_items):
        if repeat and i > 0 and rng.random() < repeat:
            text = items[rng.randrange(i)][0]
            classes = icl_classes(text)
        else:
            text, classes = icl_review(rng)
        items.append((text, labels[classes[rule]]))
    return {"rule": rule, "labels": tuple(labels), "instruction": icl_instruction(rule, labels), "items": items}


def icl_vocabulary() -> list[str]:
    """Every word the task family can write (reviews, label words, instructions), for tokenizers and tests."""
    import re

    words = set(ICL_POSITIVE + ICL_NEGATIVE + ICL_FOOD + ICL_MUSIC + LABEL_POOL + [ICL_EMPHASIS, "the", "was"])
    for rule in ICL_RULES:
        words.update(re.findall(r"[A-Za-z]+", icl_instruction(rule, ("x", "y"))))
    words -= {"x", "y"}
    return sorted(words)
