"""Embedded demo data from the seed case: the cluster newsletter and invented readers.

Cluster names and countries come from the seed report (Cyberwatching.eu D4.2);
every person and address is invented, on the reserved example.* domains.
"""

from __future__ import annotations

from consent.lists import ListSpec

CLUSTER_NEWS = ListSpec(
    slug="cluster-news",
    name="Cyberwatching.eu Cluster News",
    purpose=(
        "A weekly digest for European cybersecurity and privacy clusters: sector news,"
        " the cluster of the month, and the project's webinars and events."
    ),
    cadence="weekly, on Monday mornings",
    controller_name="Cyberwatching.eu consortium (demo)",
    controller_contact="dpo@example.org",
    consent_text=(
        "Yes, I want to receive the Cyberwatching.eu Cluster News by email, once a week."
        " I can withdraw my consent at any time with the unsubscribe link in every issue."
    ),
    controller_address="Avenue de l'Exemple 1, 1000 Brussels, Belgium",
    timezone="Europe/Madrid",
)

# (first name, last name, cluster from the seed's Annex A, country)
READERS: tuple[tuple[str, str, str, str], ...] = (
    ("Ana", "Ibarra", "GAIA", "Spain"),
    ("Bruno", "Lefevre", "Digital League", "France"),
    ("Chiara", "Rossi", "SIIT", "Italy"),
    ("Dieter", "Krause", "Silicon Saxony", "Germany"),
    ("Elena", "Popescu", "Cluj IT Cluster", "Romania"),
    ("Filip", "Nowak", "Bydgoszcz IT Cluster", "Poland"),
    ("Greta", "Lind", "Compare", "Sweden"),
    ("Hugo", "Martin", "Systematic Paris-Region", "France"),
    ("Ines", "Garcia", "Cluster TIC Galicia", "Spain"),
    ("Jonas", "Berg", "BrainsBusiness", "Denmark"),
    ("Katja", "Novak", "ICT Technology Network", "Slovenia"),
    ("Lars", "Visser", "Brainport Development", "Netherlands"),
    ("Marta", "Suarez", "AEI Ciberseguridad", "Spain"),
    ("Nico", "Bauer", "CyberForum", "Germany"),
    ("Olga", "Marin", "Control & IT Cluster", "Romania"),
    ("Pietro", "Conti", "SIIT", "Italy"),
    ("Quentin", "Roux", "Aerospace Valley", "France"),
    ("Rita", "Hofer", "Silicon Alps", "Austria"),
    ("Sami", "Kola", "Albanian ICT Association", "Albania"),
    ("Tove", "Ek", "Dataforeningen i Norr", "Sweden"),
    ("Uma", "Patel", "techUK", "United Kingdom"),
    ("Victor", "Dumas", "ALPHA-RLH", "France"),
    ("Wera", "Schulz", "Cool Silicon", "Germany"),
    ("Xavi", "Puig", "i2CAT", "Spain"),
)


def reader_address(first: str, last: str) -> str:
    return f"{first.lower()}.{last.lower()}@example.org"


# Issue 14: what a cluster sends in through /contribute/cluster-news (invented).
CONTRIBUTION = {
    "kind": "news",
    "title": "GAIA opens a cyber range for Basque SMEs",
    "link": "https://gaia.example.org/news/cyber-range?utm_source=newsletter",
    "summary": (
        "Small companies of the region can now train their staff on realistic attacks,"
        " free of charge for members.\n\nBookings open on the first Monday of each month."
    ),
    "organisation": "GAIA",
    "contact": "press@gaia.example.org",
}
