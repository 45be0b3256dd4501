"""Render a realistic digest and screenshot it with Debian's headless chromium.

    .venv/bin/python scripts/screenshot_digest.py [--out docs/digest.png] [--html out/digest-sample.html]

Seeds a throwaway SQLite store with three weeks of invented stories (titles written for
this script, not taken from any outlet), threads them and matches the shipped signposts,
builds the digest for the last day, writes the HTML and screenshots the whole page in
Debian's headless chromium (driven by Playwright) at a desktop width and at a 400 px
phone width, printing each page height. Needs `apt-get install chromium`
(scripts/setup.sh --browser does it). No network: the page has no external resources.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import update  # noqa: E402

from monitor import digest as dg  # noqa: E402
from monitor.settings import load_settings  # noqa: E402
from monitor.storage import signposts as signpost_store  # noqa: E402
from monitor.storage import threads as thread_store  # noqa: E402
from monitor.storage import schema  # noqa: E402
from monitor.storage.engine import open_store  # noqa: E402
from monitor.taxonomy import load_taxonomy  # noqa: E402
from tests.factories import SeedArticle, seed_articles  # noqa: E402

END = datetime(2026, 6, 10, 6, 0, tzinfo=timezone.utc)  # 07:00 in London
MS, OA = ("Microsoft", "ORG", "microsoft"), ("OpenAI", "ORG", "openai")
AZURE, FTC, CMA = ("Azure", "PRODUCT", "azure"), ("FTC", "ORG", "ftc"), ("CMA", "ORG", "cma")
ALTMAN, NADELLA = ("Sam Altman", "PERSON", "sam_altman"), ("Satya Nadella", "PERSON", "satya_nadella")
ORACLE, SOFTBANK = ("Oracle", "ORG", "oracle"), ("SoftBank", "ORG", "softbank")
COPILOT, CHATGPT = ("Copilot", "PRODUCT", "copilot"), ("ChatGPT", "PRODUCT", "chatgpt")
EC, STARGATE = ("European Commission", "ORG", "european_commission"), ("Stargate", "PRODUCT", "stargate")

# (hours before END, title, source, labels, entities, cluster lead index or None)
WINDOW = [
    (21, "FTC widens its look at cloud-for-equity deals between AI labs and hyperscalers", "Reuters",
     {"legal": 0.92, "regulation": 0.71, "cloud": 0.55}, [FTC, MS, OA, AZURE], None),
    (20, "US antitrust staff seek documents on Microsoft's OpenAI investment terms", "Bloomberg",
     {"legal": 0.88, "regulation": 0.66}, [FTC, MS, OA], 0),
    (19, "Regulators ask how much of OpenAI's compute bill is paid in Azure credits", "Financial Times",
     {"legal": 0.81, "cloud": 0.6}, [FTC, AZURE, OA], 0),
    (18, "OpenAI board said to be reviewing the AGI clause ahead of restructuring talks", "The Information",
     {"control": 0.91, "uneasy_alliance": 0.62}, [OA, MS, ALTMAN], None),
    (17, "Nadella: partnership with OpenAI 'has never been stronger' despite overlap", "GeekWire",
     {"uneasy_alliance": 0.74, "commercialization": 0.51}, [NADELLA, MS, OA], None),
    (16, "OpenAI adds Oracle capacity in Texas as Stargate build-out speeds up", "CNBC",
     {"cloud": 0.89, "divergence": 0.57}, [OA, ORACLE, STARGATE], None),
    (15, "Second Stargate campus would run outside Microsoft data centres", "The Verge",
     {"cloud": 0.84, "divergence": 0.61}, [STARGATE, OA, MS], 5),
    (14, "UK CMA reopens file on Microsoft's hiring of AI start-up staff", "Politico Europe",
     {"talent": 0.77, "regulation": 0.79, "legal": 0.58}, [CMA, MS], None),
    (13, "Copilot bundle undercuts ChatGPT Enterprise on price for large tenants", "Ars Technica",
     {"commercialization": 0.87, "competition": 0.64}, [COPILOT, CHATGPT, MS], None),
    (12, "Musk's amended complaint names Microsoft as a co-defendant", "Reuters",
     {"legal": 0.9, "control": 0.55}, [MS, OA, ALTMAN], None),
    (11, "OpenAI researchers leave for Microsoft AI's new London lab", "WIRED",
     {"talent": 0.86}, [OA, MS], None),
    (10, "SoftBank-led round values OpenAI above $300bn, Microsoft stake diluted", "Bloomberg",
     {"investors": 0.88, "control": 0.52}, [SOFTBANK, OA, MS], None),
    (9, "European Commission sends questionnaires on AI partnerships to cloud providers", "Politico Europe",
     {"regulation": 0.85, "legal": 0.7}, [EC, MS, OA], None),
    (8, "Microsoft tests rival frontier models inside Copilot", "The Verge",
     {"competition": 0.83, "divergence": 0.66}, [MS, COPILOT], None),
    (7, "OpenAI's device team hires former Microsoft hardware leads", "TechCrunch",
     {"talent": 0.72, "new_ecosystem": 0.55}, [OA, MS], None),
    (6, "State attorneys general question OpenAI's for-profit conversion", "Associated Press",
     {"legal": 0.83, "control": 0.6}, [OA], None),
    (5, "Judge sets schedule in authors' copyright case against both companies", "Reuters",
     {"legal": 0.86}, [MS, OA], None),
    (4, "Azure revenue beats estimates as OpenAI workloads grow", "CNBC",
     {"cloud": 0.78, "commercialization": 0.58, "investors": 0.55}, [AZURE, MS, OA], None),
    (3, "What the AGI clause actually says, and why both sides want it rewritten", "The Information",
     {"control": 0.87, "agi_safety": 0.61}, [OA, MS], None),
    (2, "Safety researchers question speed of the next model release", "WIRED",
     {"agi_safety": 0.8, "competition": 0.52}, [OA, ALTMAN], None),
    (1, "OpenAI and Microsoft agree interim terms while restructuring talks continue", "Reuters",
     {"uneasy_alliance": 0.86, "control": 0.74}, [OA, MS, ALTMAN, NADELLA], None),
]
SIGNPOST_STORY = SeedArticle(
    "OpenAI signs $30bn Oracle compute deal that reaches beyond Azure", END - timedelta(hours=2, minutes=40),
    {"cloud": 0.9, "divergence": 0.72, "new_ecosystem": 0.58}, source="Bloomberg", feed="Markets",
    text="OpenAI signed a compute agreement with Oracle worth $30bn a year. The capacity sits beyond Azure, "
         "in Oracle data centres in Texas and New Mexico.", entities=[OA, ORACLE, MS])
OFF_TOPIC = ["Phone makers bet on foldables again", "Chip stocks rally on strong guidance", "Streaming price rises",
             "Retailers test checkout-free stores", "Electric car sales slow in Europe", "Smartwatch battery life tested"]
SOURCES = ["Reuters", "Bloomberg", "CNBC", "The Verge", "WIRED", "TechCrunch", "GeekWire", "Ars Technica"]
HISTORY_TOPICS = {
    "control": "Board and governance questions over the partnership",
    "commercialization": "Enterprise pricing pressure between Copilot and ChatGPT",
    "talent": "Researchers move between the two companies",
    "legal": "Court calendar update in the AI copyright cases",
    "cloud": "Compute contracts and data-centre capacity",
    "agi_safety": "Debate over release pace and safety reviews",
    "competition": "Rival model launches and benchmark claims",
    "regulation": "Policy makers weigh rules for AI partnerships",
    "investors": "Funding talk and valuation moves",
    "uneasy_alliance": "Executives play down friction in public remarks",
    "acquisition": "Speculation about deeper ownership ties",
    "divergence": "Each side builds what it used to buy from the other",
    "new_ecosystem": "New platforms and devices outside the partnership",
}
DAILY_RATE = {"control": 2.6, "commercialization": 1.6, "talent": 1.6, "legal": 1.2, "cloud": 2.2, "agi_safety": 0.8,
              "competition": 1.5, "regulation": 1.6, "investors": 1.0, "uneasy_alliance": 1.6, "acquisition": 0.2,
              "divergence": 1.1, "new_ecosystem": 0.5}


def seed(engine) -> None:
    rng = random.Random(7)
    items: list[SeedArticle] = []
    for day in range(1, 22):  # three weeks of quieter history
        for label, rate in DAILY_RATE.items():
            for n in range(int(rate) + (rng.random() < rate % 1)):  # about `rate` stories a day
                published = END - timedelta(days=day, hours=rng.randint(0, 20), minutes=n)
                # History is only counted, never shown: distinct filler words keep each one
                # its own development (real coverage would differ story by story).
                filler = " ".join(f"w{rng.randrange(5000)}" for _ in range(8))
                items.append(SeedArticle(
                    f"{HISTORY_TOPICS[label].split()[0]} {filler}", published, {label: round(rng.uniform(0.5, 0.8), 2)},
                    text=filler,
                    source=rng.choice(SOURCES), feed="History", entities=[rng.choice([MS, OA, AZURE, ALTMAN])],
                ))
        for title in rng.sample(OFF_TOPIC, 3):
            items.append(SeedArticle(f"{title} (day -{day})", END - timedelta(days=day, hours=rng.randint(0, 20)),
                                     source=rng.choice(SOURCES), feed="Tech"))
    seed_articles(engine, items, model_version="tension-2026.06.01-lr")
    window = [
        SeedArticle(title, END - timedelta(hours=hours, minutes=17), labels, source=source, feed=_feed(source),
                    entities=entities, cluster_of=lead, text=title)
        for hours, title, source, labels, entities, lead in WINDOW
    ]
    window.append(SIGNPOST_STORY)
    window += [SeedArticle(f"{title} ({n})", END - timedelta(hours=2 + n), source="Gadget Weekly", feed="Tech")
               for n, title in enumerate(OFF_TOPIC * 4)]
    seed_articles(engine, window, model_version="tension-2026.06.01-lr")
    with engine.begin() as conn:
        conn.execute(update(schema.feeds).where(schema.feeds.c.name == "Policy").values(
            failing_since=END - timedelta(hours=30), error_count=7, last_status=503, last_error="HTTP 503 Service Unavailable"))


def _feed(source: str) -> str:
    return {"Reuters": "Wire", "Associated Press": "Wire", "Politico Europe": "Policy", "Bloomberg": "Markets",
            "CNBC": "Markets", "Financial Times": "Markets"}.get(source, "Tech")


def screenshot(html_path: Path, png: Path, width: int) -> int:
    """A full-page PNG at this viewport width; returns the page height in CSS pixels."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        sys.exit("chromium not found: apt-get install -y chromium (or bash scripts/setup.sh --browser)")
    png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-quic",
                                                                    "--disable-background-networking"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(html_path.resolve().as_uri())
        height = page.evaluate("document.documentElement.scrollHeight")
        page.screenshot(path=str(png), full_page=True)
        browser.close()
    return height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "digest.png")
    parser.add_argument("--phone", type=Path, default=REPO / "docs" / "digest-phone.png")
    parser.add_argument("--html", type=Path, help="also keep the rendered HTML here")
    parser.add_argument("--width", type=int, default=700, help="desktop viewport width, CSS pixels")
    parser.add_argument("--items", type=int, default=15, help="stories per section (digest.items_per_section)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(f"sqlite:///{tmp}/sample.db")
        seed(engine)
        settings = load_settings(REPO / "config" / "demo.toml", {})  # for the shipped signposts
        settings.digest.items_per_section = args.items
        thread_store.scan(engine)
        signpost_store.scan(engine, settings.signposts)
        taxonomy = load_taxonomy(settings.path(settings.model.taxonomy_path))
        digest = dg.build_digest(engine, settings, taxonomy, END - timedelta(days=1), END)
        subject, html, _text = dg.render_digest(digest)
        engine.dispose()
        html_path = args.html or Path(tmp) / "digest.html"
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(html, encoding="utf-8")
        desktop = screenshot(html_path, args.out, args.width)
        phone = screenshot(html_path, args.phone, 400)
    listed = sum(len(section.stories) for section in digest.sections)
    print(f"{subject}: {listed} stories listed, {len(html.encode()) // 1024} KiB of HTML")
    print(f"{args.out}: {desktop} px tall at {args.width} px; {args.phone}: {phone} px tall at 400 px")


if __name__ == "__main__":
    main()
