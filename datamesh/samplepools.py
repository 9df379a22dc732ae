"""Fixed word pools and weights behind datamesh/sampledata.py, and the vectorised ways to draw from them.

Written out here rather than drawn from a fake-data library, so the sample data set's bytes depend
on this file (no fake-data library's upgrade can change a seed's data). Names carry accents as real
customer lists do; their email forms are plain ASCII: lower case, no dot or underscore, which the
generator's email shapes rely on.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIRST_NAMES = """
Aaliyah Aaron Abigail Adam Adrian Aiko Aisha Alejandro Alexander Alice Amara Amelia Ana Andrea Andrés
Anna Anne-Marie Antoine Aria Arjun Astrid Ava Benjamin Bianca Björn Camille Carlos Charlotte Chen
Chloé Christopher Clara Daniel David Diego Dmitri Elena Elif Elijah Elizabeth Ella Emil Emily Emma
Ethan Eva Fatima Felix Finn Francesca Gabriel Giulia Grace Hana Hannah Harper Henry Hiroshi Hugo
Ibrahim Ines Isabella Isaac Ivan Jack Jakob James Jana Javier Jonas José Julia Kai Karin Kenji Laila
Lars Laura Leah Leo Léa Liam Lily Lina Lucas Lucía Luis Luka Maja Marco Maria Marie Mateo Matteo Maya
Mia Michael Mila Mohammed Nadia Naomi Nathan Nina Noah Nora Olivia Omar Oscar Paula Pedro Priya Rafael
Rahul Rosa Ryan Sakura Samuel Santiago Sara Sebastian Sofia Sophie Stefan Tobias Tomás Valentina
Victoria Wei William Yara Yusuf Zara Zoë
""".split()

LAST_NAMES = """
Abe Adeyemi Ahmed Alvarez Andersen Bakker Becker Bernard Bianchi Brown Campbell Castro Chen Costa
Cruz Davies de Vries Dubois Dumont Eriksson Evans Fernández Fischer Fontaine García Gomez González
Gupta Hansen Hernández Hoffmann Ivanova Jansen Jensen Johansson Johnson Jones Kaya Kim Klein Koch
Kowalski Kumar Larsen Laurent Lee Lehmann Li Lindqvist López Martin Martínez Meyer Moreau Müller
Murphy Nakamura Nguyen Nielsen Novak Nowak O'Brien Okafor Olsen Ortiz Park Patel Pereira Petrov
Ramírez Ricci Rivera Roberts Rodríguez Romano Rossi Russo Sánchez Santos Sato Schmidt Schneider
Schulz Silva Singh Smith Souza Suzuki Tanaka Taylor Thomas Torres Van den Berg Wagner Walker Wang
Weber Williams Wilson Wójcik Yamamoto Yilmaz Zhang Zimmermann
""".replace("de Vries", "de_Vries").replace("Van den Berg", "Van_den_Berg").split()
LAST_NAMES = [name.replace("_", " ") for name in LAST_NAMES]


def mail_form(name: str) -> str:
    """ASCII lower case without accents, spaces or apostrophes: 'Müller' -> 'muller'."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum() or c == "-")


FIRST_MAIL = [mail_form(name) for name in FIRST_NAMES]
LAST_MAIL = [mail_form(name) for name in LAST_NAMES]

# (value, weight): weights need not add up to one
DOMAINS = [("gmail.com", 30), ("outlook.com", 14), ("yahoo.com", 9), ("icloud.com", 8),
           ("hotmail.com", 6), ("proton.me", 4), ("gmx.de", 5), ("web.de", 4), ("orange.fr", 3),
           ("libero.it", 2), ("example.com", 8), ("example.org", 4), ("example.net", 3)]
COUNTRIES = [("United States", 28), ("Germany", 12), ("United Kingdom", 10), ("France", 8),
             ("Canada", 6), ("Netherlands", 5), ("Spain", 5), ("Italy", 5), ("Australia", 4),
             ("Sweden", 3), ("Poland", 3), ("Brazil", 3), ("India", 3), ("Japan", 3),
             ("Mexico", 2)]
SEGMENTS = [("consumer", 72), ("small business", 21), ("enterprise", 7)]
SEGMENT_ORDERS = [1.0, 2.5, 6.0]        # how much more often a segment's customers order
SEGMENT_AMOUNT = [1.0, 3.0, 9.0]        # and how much more they spend per order

ORDER_STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]
# rows: order placed under 3 days, 3-14 days, over 14 days before the anchor
ORDER_STATUS_BY_AGE = [[35, 35, 20, 2, 8, 0], [3, 10, 30, 50, 5, 2], [0, 1, 1, 87, 6, 5]]

LEAD_STATUSES = ["new", "contacted", "qualified", "converted", "lost"]
LEAD_STATUS_CUSTOMER = [0, 4, 6, 90, 0]                      # a lead that became a customer
LEAD_STATUS_BY_AGE = [[45, 30, 15, 3, 7], [4, 18, 20, 5, 53]]  # strangers: under 30 days, older
LEAD_SOURCES = [("web", 30), ("referral", 18), ("social", 12), ("email", 10), ("event", 8),
                ("partner", 7), ("ads", 15)]

# channel, its source for most of its leads, median budget, weight
CHANNELS = [("email", "email", 5_000, 25), ("social", "social", 15_000, 25),
            ("search", "ads", 25_000, 20), ("display", "ads", 18_000, 10),
            ("events", "event", 40_000, 10), ("partners", "partner", 12_000, 10)]
CAMPAIGN_DAYS = [(14, 15), (21, 15), (30, 30), (45, 20), (60, 12), (90, 8)]
THEMES = ["New Year Kickoff", "Winter Clearance", "Spring Launch", "Easter Deals", "May Madness",
          "Summer Preview", "Summer Sale", "Back to School", "Autumn Refresh", "Harvest Savings",
          "Black Friday", "Holiday Gifting"]


# Drawn from, vectorised: Arrow arrays of the values, cumulative weights to pick by
ID, TEXT, TS, DATE, MONEY = pa.int32(), pa.string(), pa.timestamp("ms"), pa.date32(), pa.decimal128(12, 2)


def _pool(pairs):
    """A weighted pool: its values as an Arrow array and the cumulative weights to pick by."""
    values, weights = zip(*pairs)
    return pa.array(values), np.cumsum(weights) / sum(weights)


FIRST, LAST = pa.array(FIRST_NAMES), pa.array(LAST_NAMES)
FIRST_EMAIL, LAST_EMAIL = pa.array(FIRST_MAIL), pa.array(LAST_MAIL)
DOMAIN, COUNTRY, SEGMENT, SOURCE = map(_pool, (DOMAINS, COUNTRIES, SEGMENTS, LEAD_SOURCES))
CHANNEL = _pool([(c[0], c[3]) for c in CHANNELS])
DURATION = _pool(CAMPAIGN_DAYS)
ORDER_STATUS, LEAD_STATUS = pa.array(ORDER_STATUSES), pa.array(LEAD_STATUSES)
CHANNEL_SOURCE = np.array([LEAD_SOURCES.index(next(s for s in LEAD_SOURCES if s[0] == c[1])) for c in CHANNELS])


def cdf(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=float)
    return np.cumsum(rows, axis=-1) / rows.sum(axis=-1, keepdims=True)


def pick(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index drawn by weight: uniform numbers u through a cumulative distribution (one per row if 2-D)."""
    if cdf.ndim == 1:
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
    return np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that scatters neighbouring inputs."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype(np.int64) * 1000, type=TS)


def money(cents: np.ndarray) -> pa.Array:
    """decimal128(12, 2) straight from integer cents (non-negative): low word cents, high word 0."""
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    return pa.Array.from_buffers(MONEY, len(cents), [None, pa.py_buffer(words)])


def join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")
