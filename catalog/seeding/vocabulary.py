"""The words the catalogue and its reviews are made of: plain English, so
full-text search finds them.

Written for this shop, not taken from a fake-data library: the catalogue
needs names that belong to their category ("Oak Desk Lamp" under Desk
Lamps), which generic generators do not give.
"""

from dataclasses import dataclass

# (label, SKU code). Each list has at least MAX_VARIANTS_PER_PRODUCT entries.
COLOURS = [
    ("Black", "BLK"),
    ("White", "WHT"),
    ("Grey", "GRY"),
    ("Navy", "NVY"),
    ("Olive", "OLV"),
    ("Red", "RED"),
    ("Sand", "SND"),
    ("Teal", "TEL"),
]
FINISHES = [
    ("Natural", "NAT"),
    ("Matte Black", "MBK"),
    ("Brushed Brass", "BRS"),
    ("White Oak", "WOK"),
    ("Smoked Walnut", "SWL"),
    ("Chrome", "CHR"),
]
CLOTHING_SIZES = [
    ("XS", "XS"),
    ("S", "S"),
    ("M", "M"),
    ("L", "L"),
    ("XL", "XL"),
    ("XXL", "XXL"),
]
SHOE_SIZES = [(f"EU {size}", str(size)) for size in range(38, 47)]
PAN_SIZES = [(f"{cm} cm", f"{cm}CM") for cm in (16, 20, 24, 28, 32)]
TENT_SIZES = [(f"{n}-Person", f"{n}P") for n in (1, 2, 3, 4, 6)]


@dataclass(frozen=True)
class Leaf:
    """A bottom-level category and what its products are called and cost."""

    name: str
    sku_prefix: str
    nouns: tuple[str, ...]
    # A material or a kind, the middle word of a name: Oak, Wireless.
    qualifiers: tuple[str, ...]
    options: list[tuple[str, str]]
    price_range: tuple[int, int]  # whole currency units


WOODS = ("Oak", "Walnut", "Ash", "Birch", "Bamboo", "Pine", "Teak")
METALS = ("Steel", "Brass", "Aluminium", "Copper", "Iron")
FABRICS = ("Cotton", "Linen", "Wool", "Canvas", "Nylon", "Fleece", "Denim")

# root -> middle -> leaves: a three-level tree of 28 categories.
CATEGORY_TREE = {
    "Home & Living": {
        "Furniture": [
            Leaf(
                "Desks",
                "DSK",
                ("Desk", "Writing Desk", "Standing Desk", "Corner Desk"),
                WOODS + METALS,
                FINISHES,
                (149, 899),
            ),
            Leaf(
                "Chairs",
                "CHR",
                ("Chair", "Armchair", "Dining Chair", "Stool", "Rocking Chair"),
                WOODS + FABRICS,
                FINISHES,
                (59, 499),
            ),
            Leaf(
                "Shelving",
                "SHL",
                ("Bookcase", "Wall Shelf", "Ladder Shelf", "Storage Rack"),
                WOODS + METALS,
                FINISHES,
                (39, 349),
            ),
        ],
        "Lighting": [
            Leaf(
                "Desk Lamps",
                "LMP",
                ("Desk Lamp", "Reading Lamp", "Task Light", "Clip Lamp"),
                WOODS + METALS,
                FINISHES,
                (19, 149),
            ),
            Leaf(
                "Floor Lamps",
                "FLP",
                ("Floor Lamp", "Arc Lamp", "Tripod Lamp", "Uplighter"),
                WOODS + METALS + ("Paper", "Rattan"),
                FINISHES,
                (49, 299),
            ),
        ],
        "Kitchen": [
            Leaf(
                "Cookware",
                "CKW",
                ("Frying Pan", "Saucepan", "Casserole", "Wok", "Skillet"),
                ("Cast Iron", "Carbon Steel", "Copper", "Stainless Steel", "Enamel"),
                PAN_SIZES,
                (24, 219),
            ),
            Leaf(
                "Tableware",
                "TBW",
                ("Plate Set", "Bowl Set", "Mug", "Serving Platter", "Teapot"),
                ("Stoneware", "Porcelain", "Ceramic", "Glass", "Earthenware"),
                COLOURS,
                (12, 129),
            ),
        ],
    },
    "Outdoors": {
        "Camping": [
            Leaf(
                "Tents",
                "TNT",
                ("Dome Tent", "Tunnel Tent", "Backpacking Tent", "Family Tent"),
                ("Ripstop", "Nylon", "Polyester", "Canvas"),
                TENT_SIZES,
                (89, 699),
            ),
            Leaf(
                "Sleeping Bags",
                "SLB",
                ("Sleeping Bag", "Mummy Bag", "Camp Quilt", "Bag Liner"),
                ("Down", "Synthetic", "Fleece", "Silk"),
                COLOURS,
                (29, 389),
            ),
        ],
        "Garden": [
            Leaf(
                "Garden Tools",
                "GDT",
                ("Spade", "Trowel", "Pruning Shears", "Rake", "Hoe", "Watering Can"),
                ("Steel", "Ash", "Stainless Steel", "Carbon Steel", "Galvanised"),
                COLOURS,
                (9, 89),
            ),
            Leaf(
                "Planters",
                "PLN",
                ("Planter", "Window Box", "Hanging Pot", "Raised Bed"),
                ("Terracotta", "Concrete", "Cedar", "Zinc", "Ceramic"),
                COLOURS,
                (14, 199),
            ),
        ],
    },
    "Electronics": {
        "Audio": [
            Leaf(
                "Headphones",
                "HPH",
                (
                    "Headphones",
                    "Earbuds",
                    "Studio Monitors",
                    "Noise Cancelling Headset",
                ),
                ("Wireless", "Wired", "Bluetooth", "Foldable", "Over-Ear"),
                COLOURS,
                (19, 449),
            ),
            Leaf(
                "Speakers",
                "SPK",
                ("Speaker", "Soundbar", "Bookshelf Speaker", "Smart Speaker"),
                ("Wireless", "Portable", "Waterproof", "Bluetooth", "Walnut"),
                COLOURS,
                (29, 699),
            ),
        ],
    },
    "Apparel": {
        "Outerwear": [
            Leaf(
                "Jackets",
                "JKT",
                ("Jacket", "Raincoat", "Parka", "Windbreaker", "Gilet"),
                FABRICS + ("Waxed Cotton", "Merino", "Gore-Tex"),
                CLOTHING_SIZES,
                (49, 399),
            ),
        ],
        "Footwear": [
            Leaf(
                "Boots",
                "BTS",
                ("Hiking Boots", "Chelsea Boots", "Work Boots", "Rain Boots"),
                ("Leather", "Suede", "Rubber", "Nubuck"),
                SHOE_SIZES,
                (69, 329),
            ),
            Leaf(
                "Sneakers",
                "SNK",
                ("Sneakers", "Running Shoes", "Trail Shoes", "Court Shoes"),
                ("Canvas", "Leather", "Mesh", "Knit", "Suede"),
                SHOE_SIZES,
                (39, 219),
            ),
        ],
    },
}

ADJECTIVES = (
    "Classic",
    "Compact",
    "Rustic",
    "Modern",
    "Nordic",
    "Vintage",
    "Sturdy",
    "Minimal",
    "Heritage",
    "Urban",
    "Coastal",
    "Alpine",
    "Everyday",
    "Premium",
    "Lightweight",
    "Handmade",
    "Folding",
    "Essential",
    "Studio",
    "Weekend",
)
FEATURES = (
    "It is built to last for years of daily use.",
    "Every seam and joint is checked by hand before it leaves the workshop.",
    "It is easy to clean and simple to assemble.",
    "The design keeps weight low without giving up strength.",
    "Its finish resists scratches, stains and fading in sunlight.",
    "Recycled packaging and a repairable design keep waste down.",
    "It arrives ready to use, with nothing extra to buy.",
    "Spare parts are available for ten years after purchase.",
    "A two year warranty covers defects in materials and workmanship.",
    "It pairs well with the rest of the collection.",
)
AUDIENCES = (
    "a first flat",
    "weekend adventurers",
    "a home office",
    "anyone who cooks every day",
    "small spaces",
    "a housewarming",
    "long winters",
    "busy families",
)

# Review titles and bodies by rating, so a one-star review does not gush.
REVIEW_TITLES = {
    1: ("Disappointed", "Broke quickly", "Not as described"),
    2: ("Could be better", "Mixed feelings", "Below expectations"),
    3: ("Does the job", "Decent for the price", "Okay overall"),
    4: ("Very good", "Happy with it", "Solid choice"),
    5: ("Excellent quality", "Love it", "Worth every penny", "Perfect"),
}
REVIEW_BODIES = {
    1: (
        "It stopped working within a week and support was slow to answer.",
        "The material feels cheap and the colour is nothing like the photos.",
    ),
    2: (
        "It works, but the finish has rough edges and the instructions are poor.",
        "Smaller than expected and a little flimsy.",
    ),
    3: (
        "Does what it says. Nothing special, nothing wrong.",
        "Fine for occasional use; delivery took longer than promised.",
    ),
    4: (
        "Well made and arrived quickly. One small scratch, otherwise great.",
        "Comfortable, sturdy and good value. Would buy again.",
    ),
    5: (
        "Beautifully made, sturdy and exactly as pictured. Highly recommended.",
        "I use it every day and it still looks new. Fantastic quality.",
    ),
}
