"""The words customers and their addresses are made of: plain English names,
streets and cities, written for this shop rather than drawn from a fake-data
library.
"""

FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hugo", "Ines",
    "Jonas", "Keiko", "Liam", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa",
    "Samir", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Amara",
    "Bruno", "Carmen", "Dmitri", "Eva", "Felix", "Hana", "Ivan", "Julia", "Kofi",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Becker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen",
    "Ito", "Jensen", "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov",
    "Quispe", "Rossi", "Silva", "Tanaka", "Urban", "Varga", "Wagner", "Yilmaz",
    "Zhang", "Berg", "Lindqvist", "Mendes", "Nakamura", "Schmidt",
)  # fmt: skip
STREETS = (
    "Maple", "Harbour", "Station", "Mill", "Church", "Elm", "Park", "River",
    "Orchard", "Bridge", "King", "Market", "Chestnut", "Willow", "Victoria",
)  # fmt: skip
STREET_KINDS = ("Street", "Road", "Lane", "Avenue", "Way", "Close")
# (city, ISO 3166-1 alpha-2); every country here uses five-digit postcodes.
CITIES = (
    ("Portland", "US"),
    ("Austin", "US"),
    ("Denver", "US"),
    ("Boston", "US"),
    ("Berlin", "DE"),
    ("Hamburg", "DE"),
    ("Munich", "DE"),
    ("Lyon", "FR"),
    ("Paris", "FR"),
    ("Madrid", "ES"),
    ("Valencia", "ES"),
    ("Turin", "IT"),
    ("Milan", "IT"),
    ("Helsinki", "FI"),
)
