"""Chapter 12's fine-tuning task: turn a short order message into one line of JSON.

A customer's message names who ordered, where to deliver, what and how many, in
one of many phrasings ("Hi, this is Priya Shah from Leeds. Could you send me three
desk lamps?"); the answer is always the same four keys in the same order, with the
item in the singular and the quantity as a number::

    {"name": "Priya Shah", "city": "Leeds", "item": "desk lamp", "quantity": 3}

It is the kind of job a small model is fine-tuned for in practice: a fixed output
format that a program reads, which the model does not follow when only asked.

- :func:`make_orders` draws messages from the project's hand-written parts with a
  seeded generator; :func:`write_orders` freezes the train and test sets into
  ``llmlab/corpus/orders.json`` (the note ``llmlab/corpus/SOURCE.md`` says how), and
  :func:`load_orders` reads them back;
- :func:`answer` is an item's reference JSON, :func:`parse_answer` reads a model's
  reply and :func:`field_scores` scores it key by key.

The test set's names and cities are held out of the training set, so a model must
copy them from the message, not recall them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from . import _checks

CORPUS = Path(__file__).resolve().parent / "corpus"
ORDERS_FILE = CORPUS / "orders.json"
SEED = 2026
SIZES = {"train": 400, "val": 100, "test": 200}
FIELDS = ("name", "city", "item", "quantity")
SYSTEM = ("Extract the order as JSON with the keys name, city, item and quantity "
          "(a number). Reply with the JSON only.")

FIRST = ["Priya", "Tom", "Aisha", "Lucas", "Mei", "Omar", "Sofia", "Jonas", "Fatima", "Liam",
         "Yuki", "Carlos", "Nadia", "Ben", "Elena", "Kwame", "Hannah", "Ravi", "Chloe", "Diego",
         "Ingrid", "Samir", "Grace", "Mateo", "Zara", "Felix", "Amara", "Noah", "Leila", "Pavel",
         "Rosa", "Kenji", "Maya", "Hugo", "Esther", "Tariq", "Clara", "Ivan", "Nia", "Oscar"]
LAST = ["Shah", "Becker", "Okafor", "Martin", "Chen", "Haddad", "Rossi", "Nilsson", "Khan",
        "Walsh", "Tanaka", "Mendes", "Petrova", "Cole", "Garcia", "Mensah", "Fischer", "Iyer",
        "Dubois", "Silva", "Berg", "Aziz", "Murphy", "Lopez", "Novak", "Wagner", "Obi", "Turner",
        "Farah", "Sokolov", "Moreau", "Sato", "Patel", "Laurent", "Cohen", "Malik", "Weber",
        "Ivanova", "Adeyemi", "Lund"]
CITIES = ["Leeds", "Lisbon", "Lyon", "Porto", "Bristol", "Dublin", "Ghent", "Bergen", "Graz",
          "Turin", "Krakow", "Seville", "Malmo", "Utrecht", "Basel", "Bilbao", "Cork", "Aarhus",
          "Brno", "Leipzig", "Nantes", "Bologna", "Tartu", "Galway", "Cardiff", "Toulouse",
          "Geneva", "Riga", "Valencia", "Hamburg", "Oslo", "Naples", "Vilnius", "Glasgow",
          "Antwerp", "Salzburg", "Gdansk", "Bordeaux", "Florence", "York"]
# (singular, plural): the answer always uses the singular
ITEMS = [("desk lamp", "desk lamps"), ("coffee mug", "coffee mugs"), ("notebook", "notebooks"),
         ("bookshelf", "bookshelves"), ("wool scarf", "wool scarves"), ("glass vase", "glass vases"),
         ("kitchen knife", "kitchen knives"), ("umbrella", "umbrellas"), ("backpack", "backpacks"),
         ("candle", "candles"), ("phone charger", "phone chargers"), ("cushion", "cushions"),
         ("tea towel", "tea towels"), ("baking dish", "baking dishes"),
         ("picture frame", "picture frames"), ("water bottle", "water bottles"),
         ("bike light", "bike lights"), ("plant pot", "plant pots"),
         ("wine glass", "wine glasses"), ("dictionary", "dictionaries"), ("battery", "batteries"),
         ("road map", "road maps"), ("soup bowl", "soup bowls"), ("door mat", "door mats")]
NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve"]
TEMPLATES = [
    "Hi, this is {name} from {city}. Could you send me {order}?",
    "{name} ({city}) wants {order}.",
    "Order for {name}: {order}, delivery to {city}.",
    "Please ship {order} to {city}. The buyer is {name}.",
    "{city} customer {name} asked for {order} this morning.",
    "Can I get {order}? Name's {name}, I'm in {city}.",
    "New order - {order} - {name}, {city}",
    "We need {order} at our {city} office, thanks. {name}",
    "{name} called from {city} and ordered {order}.",
    "Deliver {order} to {name} in {city}, please.",
    "I'd like {order} sent to {city}. Regards, {name}",
    "Reorder: {name}, {city}, {order}.",
    "Good morning! {name} here, writing from {city}. I'll take {order}.",
    "Send {name} {order}. Address is in {city}.",
    "From {city}: {name} would like to buy {order}.",
    "Hello, {order} for {name} please. Shipping to {city}.",
]


def _held_out(values: list[str]) -> tuple[list[str], list[str]]:
    """The first 70% of a list for training, the rest for testing."""
    cut = int(len(values) * 0.7)
    return values[:cut], values[cut:]


def _quantity_text(rng: random.Random, qty: int, singular: str, plural: str) -> str:
    if qty == 1:
        word = rng.choice(["a", "one", "1"])
        return f"{word} {singular}"
    spelled = NUMBER_WORDS[qty - 1] if rng.random() < 0.5 else str(qty)
    return f"{spelled} {plural}"


def make_orders(n: int, split: str, seed: int = SEED) -> list[dict]:
    """``n`` order messages for ``split`` ("train", "val" or "test"), drawn with a seeded generator.

    Each item is ``{"id", "text", "name", "city", "item", "quantity"}``. Training and
    validation items use the first 70% of the first names, surnames and cities, test
    items the rest.
    """
    _checks.positive_int("n", n)
    _checks.integer("seed", seed)
    if split not in SIZES:
        raise ValueError(f"split must be one of {sorted(SIZES)}, got {split!r}")
    rng = random.Random(f"{seed}-{split}")
    part = 1 if split == "test" else 0
    first, last, cities = (_held_out(v)[part] for v in (FIRST, LAST, CITIES))
    items = []
    for i in range(n):
        name = f"{rng.choice(first)} {rng.choice(last)}"
        city = rng.choice(cities)
        singular, plural = rng.choice(ITEMS)
        qty = rng.randint(1, 12)
        template = rng.choice(TEMPLATES)
        text = template.format(name=name, city=city,
                               order=_quantity_text(rng, qty, singular, plural))
        items.append({"id": f"{split}-{i:03d}", "text": text, "name": name, "city": city,
                      "item": singular, "quantity": qty})
    return items


def write_orders(path: Path = ORDERS_FILE) -> Path:
    """Freeze both splits into one JSON file (the exact bytes a test regenerates)."""
    _checks.path("path", path)
    data = {split: make_orders(n, split) for split, n in SIZES.items()}
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return Path(path)


def load_orders(split: str) -> list[dict]:
    """The frozen ``split`` ("train": 400 items, "val": 100, "test": 200) as fresh dicts."""
    if split not in SIZES:
        raise ValueError(f"split must be one of {sorted(SIZES)}, got {split!r}")
    return json.loads(ORDERS_FILE.read_text(encoding="utf-8"))[split]


def answer(item: dict) -> str:
    """The reference reply: the four keys in order, on one line."""
    if not isinstance(item, dict) or any(k not in item for k in FIELDS):
        raise ValueError(f"item must be a dict with the keys {FIELDS}, got {item!r}")
    return json.dumps({k: item[k] for k in FIELDS})


def parse_answer(reply: str) -> dict | None:
    """The first JSON object in ``reply`` (code fences and text around it allowed), or None."""
    _checks.string("reply", reply)
    start = reply.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(reply[start:])
        except json.JSONDecodeError:
            start = reply.find("{", start + 1)
            continue
        return value if isinstance(value, dict) else None
    return None


def field_scores(reply: str, item: dict) -> dict[str, bool]:
    """Which of the four fields ``reply`` gets right (a reply that is not JSON gets none).

    Names, cities and items compare after stripping spaces and case; the quantity must
    be the number itself (3 or "3"), not a word.
    """
    _checks.string("reply", reply)
    answer(item)  # checks the item
    parsed = parse_answer(reply) or {}
    out = {}
    for key in FIELDS:
        got, want = parsed.get(key), item[key]
        if key == "quantity":
            out[key] = str(got).strip() == str(want)
        else:
            out[key] = isinstance(got, str) and got.strip().lower() == str(want).lower()
    return out
