"""Templated sentences whose class is set by one word from a per-class word list.

Templates fill the {word} slot from the class's list and every other slot from a shared list,
so the class can only be read off that one word. No input contains a label name.
"""

import random

from symtune.tasks.builtin.sampling import Draw, sample_family
from symtune.tasks.task import Task

SENTIMENT = {
    "positive": ["wonderful", "delightful", "superb", "charming", "brilliant", "excellent",
                 "lovely", "gripping", "enjoyable", "fantastic", "moving", "memorable"],
    "negative": ["awful", "dreadful", "terrible", "boring", "dull", "horrible",
                 "tedious", "disappointing", "clumsy", "forgettable", "painful", "bland"],
}
REVIEW_TEMPLATES = [
    "The {thing} was {very}{word}.",
    "I found the {thing} {very}{word}.",
    "My friends said the {thing} was {very}{word}.",
    "Everyone agrees that the {thing} is {very}{word}.",
    "Honestly, the {thing} felt {very}{word} from start to finish.",
]
REVIEWED = ["film", "movie", "novel", "play", "album", "concert", "meal", "hotel stay",
            "video game", "documentary", "musical", "show"]
INTENSIFIERS = ["", "really ", "truly ", "rather ", "quite "]

TOPICS = {
    "sport": ["goalkeeper", "referee", "stadium", "marathon", "tennis match", "penalty kick",
              "league table", "cricket bat", "swimming race", "championship final", "striker",
              "cycling team", "basketball court", "rugby coach"],
    "food": ["pasta", "chef", "bakery", "recipe", "soup", "dessert", "spice market", "pizza oven",
             "cheese board", "breakfast menu", "chocolate cake", "noodle bar", "olive oil", "roast chicken"],
    "technology": ["smartphone", "laptop", "software update", "processor", "search engine", "robot",
                   "database", "wifi router", "graphics card", "battery life", "operating system",
                   "chatbot", "cloud server", "keyboard"],
}
TOPIC_TEMPLATES = [
    "My {person} could not stop talking about the {word} {when}.",
    "There was a long article about the {word} in the paper {when}.",
    "My {person} asked me {when} what I think of the {word}.",
    "The radio show discussed the {word} {when}.",
    "My {person} sent me a video about the {word} {when}.",
]
PEOPLE = ["brother", "sister", "neighbour", "boss", "uncle", "aunt", "teacher", "flatmate"]
WHEN = ["yesterday", "this morning", "last night", "on Sunday", "last week", "today"]

THINGS = {
    "animal": ["rabbit", "horse", "parrot", "tiger", "hedgehog", "dolphin", "goat", "owl", "squirrel",
               "turtle", "wolf", "frog", "camel", "penguin", "fox", "donkey", "beetle", "lizard"],
    "object": ["teapot", "umbrella", "bicycle", "lamp", "suitcase", "hammer", "violin", "pillow", "bucket",
               "ladder", "clock", "kettle", "helmet", "backpack", "candle", "wallet", "shovel", "mirror"],
}
THING_TEMPLATES = [
    "There was a {size} {word} in the garden.",
    "I noticed a {size} {word} behind the shed.",
    "A {size} {word} was lying near the door.",
    "She pointed at the {size} {word} by the river.",
    "We found a {size} {word} under the bridge.",
]
SIZES = ["small", "large", "tiny", "strange", "familiar", "big", "quiet", "lonely"]  # no colours

COLOURS = {
    "colour": ["red", "blue", "green", "yellow", "purple", "pink", "black", "white", "grey", "brown"],
    "no colour": ["large", "cheap", "wooden", "new", "tiny", "heavy", "soft", "broken", "small", "plastic"],
}
COLOUR_TEMPLATES = [
    "{name} bought a {word} {item} at the market.",
    "{name} left a {word} {item} on the train.",
    "There is a {word} {item} next to {name}'s desk.",
    "{name} wants a {word} {item} for the trip.",
    "{name} borrowed a {word} {item} from a friend.",
]
NAMES = ["Anna", "Tom", "Maria", "Sam", "Lena", "Omar", "Priya", "Jack"]
ITEMS = ["scarf", "chair", "kite", "bicycle", "mug", "jacket", "notebook", "umbrella", "balloon",
         "vase", "hat", "blanket"]


def _templated(templates: list[str], words_by_label: dict[str, list[str]], **slots: list[str]) -> dict[str, Draw]:
    def draw_from(words: list[str]) -> Draw:
        def draw(rng: random.Random) -> str:
            fill = {slot: rng.choice(options) for slot, options in slots.items()}
            return rng.choice(templates).format(word=rng.choice(words), **fill)

        return draw

    return {label: draw_from(words) for label, words in words_by_label.items()}


TASKS = {
    "review_sentiment": (
        "Say whether the review is positive or negative.",
        _templated(REVIEW_TEMPLATES, SENTIMENT, thing=REVIEWED, very=INTENSIFIERS),
    ),
    "keyword_topic": (
        "Say whether the sentence is about sport, food or technology.",
        _templated(TOPIC_TEMPLATES, TOPICS, person=PEOPLE, when=WHEN),
    ),
    "animal_or_object": (
        "Say whether the sentence mentions an animal or an object.",
        _templated(THING_TEMPLATES, THINGS, size=SIZES),
    ),
    "colour_word": (
        "Say whether the sentence contains a colour word.",
        _templated(COLOUR_TEMPLATES, COLOURS, name=NAMES, item=ITEMS),
    ),
}


def tasks(seed: int, n_train: int, n_test: int) -> list[Task]:
    return sample_family("lexical", TASKS, seed, n_train, n_test)
