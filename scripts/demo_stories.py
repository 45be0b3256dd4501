"""Realistic demo stories (written for this project, not copied from any outlet) for the
page screenshots and the web benchmark: (days ago, feed, source, title, text).

Some stories appear in two feeds with different headlines, as wire copy does, so the
near-duplicate clustering has something to cluster.
"""

WIRE = "Wire service tech desk"
MARKETS = "Markets and deals"
POLICY = "AI policy briefing"
CONSUMER = "Consumer tech"

STORIES = [
    (0.2, WIRE, "Tech Wire", "OpenAI books more Oracle capacity as Stargate build-out speeds up",
     "OpenAI has agreed to take several more gigawatts of data center capacity from Oracle, people familiar with the "
     "deal said, the latest sign that the ChatGPT maker is spreading its computing needs well beyond Microsoft's Azure. "
     "The capacity will serve the Stargate project in Texas and a second site under construction. Microsoft, which once "
     "had exclusive rights to host OpenAI's workloads, now holds a right of first refusal on new capacity. Executives at "
     "both companies describe the arrangement as complementary, but analysts say the shift reduces Azure's leverage over "
     "its most important AI customer and makes the partnership look more like an uneasy alliance."),
    (0.3, MARKETS, "Ledger Business", "Oracle shares climb on expanded OpenAI data center agreement",
     "OpenAI has agreed to take several more gigawatts of data center capacity from Oracle, people familiar with the "
     "deal said, the latest sign that the ChatGPT maker is spreading its computing needs well beyond Microsoft's Azure. "
     "The capacity will serve the Stargate project in Texas and a second site under construction. Microsoft, which once "
     "had exclusive rights to host OpenAI's workloads, now holds a right of first refusal on new capacity. Executives at "
     "both companies describe the arrangement as complementary, but analysts say the shift reduces Azure's leverage over "
     "its most important AI customer and makes the partnership look more like an uneasy alliance."),
    (0.5, POLICY, "Policy Brief", "FTC asks whether Microsoft's stake gives it control over OpenAI",
     "The Federal Trade Commission has sent questions to Microsoft and OpenAI about the governance rights attached to "
     "Microsoft's stake in OpenAI's new for-profit company, according to two people briefed on the inquiry. The agency "
     "wants to know whether board observer seats, intellectual property rights and the revenue share give Microsoft "
     "effective control. The UK Competition and Markets Authority examined the same question last year and decided the "
     "partnership did not amount to a merger. Microsoft said it would cooperate with regulators."),
    (0.8, WIRE, "Tech Wire", "Microsoft AI hires a dozen researchers from rival labs",
     "Microsoft's consumer AI group has hired about a dozen researchers from Google DeepMind and other labs in recent "
     "weeks, offering pay packages that recruiters describe as the highest they have seen. The hires will work on "
     "Microsoft's in-house MAI models. OpenAI has also lost several senior staff this year, and the competition for "
     "experienced researchers has become one of the sharpest points of friction between the partners, who now recruit "
     "from the same small pool of people."),
    (1.1, MARKETS, "Ledger Business", "Copilot and ChatGPT Enterprise chase the same corporate buyers",
     "Sales teams at Microsoft and OpenAI increasingly pitch competing products to the same large companies, according "
     "to chief information officers at three Fortune 500 firms. Microsoft sells Copilot seats bundled with its Office "
     "licences while OpenAI offers ChatGPT Enterprise directly, sometimes at a discount. Both products run on the same "
     "underlying models. One buyer said the two vendors' account managers had each warned him off the other's product, "
     "a sign of how commercial pressure is straining the partnership."),
    (1.6, POLICY, "Policy Brief", "Publishers widen copyright suit over model training data",
     "A group of newspaper publishers has added new claims to its copyright lawsuit against OpenAI and Microsoft, "
     "arguing that the companies' models reproduce paywalled articles nearly word for word. The amended complaint asks "
     "the court to order the destruction of models trained on the publishers' work. OpenAI says training on publicly "
     "available text is fair use and points to licensing deals it has signed with other publishers. Microsoft, which "
     "offers customers indemnity against copyright claims over Copilot output, is a co-defendant."),
    (2.4, WIRE, "Tech Wire", "Safety researchers' departures renew questions about OpenAI governance",
     "Two more members of OpenAI's safety research team have left the company, saying in public posts that safety work "
     "had taken a back seat to shipping products. Their departures follow earlier exits from the team that studied how "
     "to control systems more capable than people. OpenAI said its safety and security committee reviews every major "
     "release and that it has expanded its preparedness framework. Critics said the nonprofit board's oversight of the "
     "AGI mission is weaker than it appears."),
    (3.0, MARKETS, "Ledger Business", "Microsoft tests its own MAI models inside Copilot",
     "Microsoft has begun routing some Copilot requests to its in-house MAI models instead of OpenAI's, according to "
     "people familiar with the tests. The company says it wants a range of models for different tasks and costs. The "
     "move gives Microsoft a hedge if its access to OpenAI's most advanced systems changes, and reduces the compute it "
     "pays for on every query. Analysts see it as the clearest sign yet that the two companies' strategies are diverging."),
    (4.2, WIRE, "Tech Wire", "Anthropic and Google gain ground in the enterprise model market",
     "Anthropic's Claude and Google's Gemini have gained share among companies buying AI models through an API, a survey "
     "of technology buyers found, while OpenAI's share slipped for the second quarter in a row. Microsoft now offers "
     "Anthropic models in some of its own products alongside OpenAI's. Buyers said they increasingly mix providers to "
     "avoid depending on one lab, and that price and reliability mattered more than benchmark scores."),
    (5.5, POLICY, "Policy Brief", "OpenAI board sets out how it would declare AGI",
     "OpenAI's nonprofit board has published the process it would follow to declare that the company has reached "
     "artificial general intelligence, a declaration that under its contract would change Microsoft's access to "
     "OpenAI's technology. An independent expert panel would now have to verify any such claim. The change came out of "
     "the restructuring talks and is meant to settle one of the most contested clauses in the partnership, though "
     "lawyers said the definition of AGI itself remains vague."),
    (7.0, MARKETS, "Ledger Business", "Investors weigh OpenAI's next funding round at a higher valuation",
     "OpenAI is sounding out investors for a new funding round that would value the company well above its last "
     "private valuation, people briefed on the talks said. SoftBank and several sovereign funds are expected to take "
     "part. Microsoft, which owns a large minority stake after the restructuring, is not expected to invest more. The "
     "round would fund data centers and chips, and some investors asked how OpenAI would balance its nonprofit "
     "mission against the returns they expect."),
    (9.0, POLICY, "Policy Brief", "EU obligations for general-purpose AI models begin to bite",
     "Providers of general-purpose AI models, including OpenAI and Microsoft, now have to publish summaries of their "
     "training data and document how they test for systemic risks under the European Union's AI Act. The European "
     "Commission's AI Office said it would check compliance from next year. Industry groups warned that the rules "
     "could slow launches in Europe, while consumer groups said they did not go far enough."),
    (11.0, WIRE, "Tech Wire", "Developers build a new ecosystem on open-weight models",
     "A growing number of startups are building products on open-weight models that they can run on their own servers, "
     "rather than paying OpenAI or Microsoft for API access. Founders cite cost, privacy and control over updates. Model "
     "hubs report record downloads, and cloud providers other than Azure are courting these companies with credits. "
     "Investors say the shift could create a new ecosystem that neither partner controls."),
    (13.0, MARKETS, "Ledger Business", "Microsoft and OpenAI revise revenue-sharing terms",
     "Microsoft and OpenAI have revised how they share revenue from products built on OpenAI's models, according to a "
     "filing. Microsoft's share will decline over time, and the companies set new rules for selling the same models to "
     "the same customers. The changes are part of the broader agreement reached during OpenAI's restructuring, which "
     "also extended Microsoft's intellectual property rights to the end of the decade."),
    (16.0, WIRE, "Tech Wire", "Both companies dismiss talk of an outright acquisition",
     "Microsoft and OpenAI both dismissed speculation that Microsoft could try to buy OpenAI outright, after a research "
     "note suggested a takeover as one way out of their increasingly complicated relationship. Antitrust lawyers said "
     "any acquisition would face long reviews in Washington, London and Brussels. OpenAI's nonprofit structure would "
     "also make a sale difficult."),
    (20.0, POLICY, "Policy Brief", "UK regulator closes review of Microsoft's hiring of Inflection staff",
     "The UK Competition and Markets Authority has closed its review of Microsoft's hiring of most of Inflection AI's "
     "staff, finding that the deal counted as a merger but did not reduce competition. The case was watched closely as "
     "a test of acqui-hires, in which big technology companies hire a startup's team and license its technology "
     "instead of buying the company outright."),
    (26.0, WIRE, "Tech Wire", "OpenAI signs a cloud agreement with Google for TPU capacity",
     "OpenAI has signed an agreement to use Google Cloud's TPU chips for some of its workloads, adding a third major "
     "cloud provider alongside Microsoft Azure and Oracle. The deal gives OpenAI an alternative to Nvidia hardware and "
     "more bargaining power with Microsoft. Google competes with OpenAI through its Gemini models, making the deal an "
     "unusual arrangement between rivals."),
    (33.0, POLICY, "Policy Brief", "Court sets trial date in authors' lawsuit against OpenAI and Microsoft",
     "A federal judge has set a trial date in the consolidated lawsuit brought by authors who say OpenAI and Microsoft "
     "trained AI models on their books without permission. The judge rejected the companies' request to dismiss the "
     "claims that the models can reproduce large passages. Both companies say their use of the books was lawful."),
    (45.0, MARKETS, "Ledger Business", "Microsoft keeps Azure API exclusivity under new OpenAI agreement",
     "Under the terms of the new agreement, OpenAI's API will remain available exclusively on Azure until a panel "
     "verifies that AGI has been reached, while OpenAI can now serve some products through other clouds. Microsoft "
     "keeps rights to OpenAI's models and products through 2032. Analysts said the deal preserves Microsoft's control "
     "over the most valuable channel while giving OpenAI room to buy compute elsewhere."),
    (60.0, WIRE, "Tech Wire", "OpenAI completes restructuring into a public benefit corporation",
     "OpenAI has completed its restructuring, turning its for-profit arm into a public benefit corporation controlled "
     "by its nonprofit foundation. Microsoft receives a stake of roughly a quarter of the new company. The change clears "
     "the way for OpenAI to raise more money and possibly go public one day, and ends months of negotiation over "
     "control, intellectual property and the AGI clause."),
    (0.4, CONSUMER, "Gadget Review", "The best noise-cancelling headphones for travel",
     "We tested twelve pairs of noise-cancelling headphones on flights, trains and in open-plan offices. The winners "
     "combine strong cancellation with comfortable ear cups and batteries that last a long-haul flight. Our favourite "
     "over-ear pair costs less than last year's pick, and a pair of earbuds came a close second for people who prefer "
     "to travel light."),
    (2.0, CONSUMER, "Gadget Review", "Foldable phone review: thinner, lighter, still pricey",
     "This year's foldable is thinner and lighter than its predecessor, and the crease in the inner screen is harder to "
     "see. Battery life comfortably lasts a day. The camera is good rather than great, and the price still puts it out "
     "of reach for most buyers."),
]
