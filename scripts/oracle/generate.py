"""Generates the oracle corpus and the OASIS stix2-validator's verdict on every object.

The corpus is deterministic (fixed seeds): STIX 2.1 objects from faker-cti (indicators of every
observable type, attack patterns, threat actors, identities, relationships) and from the OASIS
stix2 library's own constructors, plus mutated copies of part of them, each mutation named so the
Rust side (crates/ti-core/tests/oracle.rs) can list the deliberate differences by name.

Usage: generate.py OUT.json
"""

import copy
import json
import random
import sys

import stix2
from faker import Faker
from faker_cti import CtiProvider
from stix2validator import ValidationOptions, validate_instance

SEED = 20261124


def clean(obj):
    """faker-cti leaves some optional properties as None; STIX has no null, so drop them."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    return obj


def faker_objects(fake):
    objs = []
    for kind in ["domain-name", "email-addr", "ipv4-addr", "ipv6-addr", "url", "file"] * 12:
        objs.append(fake.stix_indicator(kind))
    indicators = [o["id"] for o in objs]
    actors = []
    for _ in range(15):
        objs.append(fake.stix_attack_pattern())
        actor = fake.stix_threat_actor()
        actors.append(actor["id"])
        objs.append(actor)
        objs.append(fake.stix_identity())
    for i in range(20):
        objs.append(
            fake.stix_relationship(
                source_ref=indicators[i], target_ref=actors[i % len(actors)], relationship_type="indicates"
            )
        )
    return [("faker-cti", clean(o)) for o in objs]


def stix2_objects(fake, rng):
    objs = []
    for i in range(30):
        kind = rng.choice(["domain-name", "ipv4-addr", "url", "file"])
        ind = stix2.Indicator(
            name=f"stix2 indicator {i}",
            pattern=fake.stix_pattern(kind),
            pattern_type="stix",
            valid_from="2024-01-01T00:00:00Z",
            valid_until="2027-01-01T00:00:00Z",
            indicator_types=["malicious-activity"],
            confidence=rng.randint(0, 100),
            labels=["stix2"],
        )
        actor = stix2.ThreatActor(name=fake.intrusion_set(), threat_actor_types=["crime-syndicate"])
        rel = stix2.Relationship(ind, "indicates", actor)
        objs += [ind, actor, rel]
    objs.append(stix2.Identity(name="ACME", identity_class="organization"))
    objs.append(stix2.AttackPattern(name="Spearphishing"))
    # A pattern with qualifiers and several observations, valid in both.
    objs.append(
        stix2.Indicator(
            pattern="[ipv4-addr:value = '198.51.100.1'] FOLLOWEDBY [url:value LIKE 'http://%.example/%'] WITHIN 600 SECONDS",
            pattern_type="stix",
            valid_from="2024-01-01T00:00:00Z",
        )
    )
    return [("stix2", json.loads(o.serialize())) for o in objs]


def is_type(*types):
    return lambda o: o.get("type") in types


def has(key):
    return lambda o: key in o


ANY = lambda o: True
NAMED = is_type("attack-pattern", "threat-actor", "identity")
INDICATOR = is_type("indicator")
RELATIONSHIP = is_type("relationship")


def setter(key, value):
    def f(o):
        o[key] = value

    return f


def dropper(key):
    def f(o):
        o.pop(key, None)

    return f


def id_wrong_type(o):
    o["id"] = "malware--" + o["id"].split("--", 1)[1] if o["type"] != "malware" else o["id"]


def pattern_unclosed(o):
    o["pattern"] = o["pattern"].rstrip("]")


def valid_until_equal(o):
    o["valid_until"] = o["valid_from"]


def kill_chain_no_phase(o):
    o["kill_chain_phases"] = [{"kill_chain_name": "lockheed-martin-cyber-kill-chain"}]


# (name, applies to, mutation). Every name is stable: oracle.rs refers to them.
MUTATIONS = [
    ("drop_id", ANY, dropper("id")),
    ("drop_type", ANY, dropper("type")),
    ("drop_created", ANY, dropper("created")),
    ("drop_modified", ANY, dropper("modified")),
    ("drop_spec_version", ANY, dropper("spec_version")),
    ("spec_version_2_2", ANY, setter("spec_version", "2.2")),
    ("id_wrong_type", ANY, id_wrong_type),
    ("id_not_uuid", ANY, lambda o: o.__setitem__("id", o["type"] + "--1234")),
    ("created_bad_date", ANY, setter("created", "2024-13-45T00:00:00Z")),
    ("created_no_timezone", ANY, setter("created", "2024-01-01T00:00:00")),
    ("created_offset", ANY, setter("created", "2024-01-01T00:00:00+01:00")),
    ("created_words", ANY, setter("created", "yesterday")),
    ("modified_before_created", ANY, setter("modified", "1990-01-01T00:00:00Z")),
    ("confidence_101", ANY, setter("confidence", 101)),
    ("confidence_negative", ANY, setter("confidence", -1)),
    ("confidence_string", ANY, setter("confidence", "95")),
    ("revoked_string", ANY, setter("revoked", "yes")),
    ("labels_string", ANY, setter("labels", "bad")),
    ("labels_empty", ANY, setter("labels", [])),
    ("description_null", ANY, setter("description", None)),
    ("lang_empty", ANY, setter("lang", "")),
    ("marking_not_identifier", ANY, setter("object_marking_refs", ["tlp-green"])),
    ("external_reference_no_source", ANY, setter("external_references", [{"url": "https://x.example/"}])),
    ("created_by_ref_bad", ANY, setter("created_by_ref", "acme")),
    ("drop_name", NAMED, dropper("name")),
    ("drop_pattern", INDICATOR, dropper("pattern")),
    ("drop_pattern_type", INDICATOR, dropper("pattern_type")),
    ("drop_valid_from", INDICATOR, dropper("valid_from")),
    ("pattern_unclosed", INDICATOR, pattern_unclosed),
    ("pattern_bad_operator", INDICATOR, setter("pattern", "[ipv4-addr:value ~ '198.51.100.1']")),
    ("pattern_no_path", INDICATOR, setter("pattern", "[= '198.51.100.1']")),
    ("pattern_bad_qualifier", INDICATOR, setter("pattern", "[ipv4-addr:value = '198.51.100.1'] WITHIN -5 SECONDS")),
    ("pattern_lowercase_and", INDICATOR, setter("pattern", "[ipv4-addr:value = '198.51.100.1' and ipv4-addr:value = '198.51.100.2']")),
    ("pattern_ipv4_out_of_range", INDICATOR, setter("pattern", "[ipv4-addr:value = '999.1.1.1']")),
    ("pattern_md5_short", INDICATOR, setter("pattern", "[file:hashes.MD5 = 'abc']")),
    ("pattern_type_sigma", INDICATOR, setter("pattern_type", "sigma")),
    ("valid_until_before_from", INDICATOR, setter("valid_until", "1999-01-01T00:00:00Z")),
    ("valid_until_equal_from", INDICATOR, valid_until_equal),
    ("kill_chain_no_phase", INDICATOR, kill_chain_no_phase),
    ("drop_relationship_type", RELATIONSHIP, dropper("relationship_type")),
    ("source_ref_bad", RELATIONSHIP, setter("source_ref", "not-an-id")),
    ("drop_target_ref", RELATIONSHIP, dropper("target_ref")),
]


def main():
    out = sys.argv[1]
    rng = random.Random(SEED)
    Faker.seed(SEED)
    fake = Faker()
    fake.add_provider(CtiProvider)

    base = faker_objects(fake) + stix2_objects(fake, rng)
    corpus = [(source, None, o) for source, o in base]
    # Every mutation is applied to several objects it fits, chosen by the seeded generator.
    for name, applies, mutate in MUTATIONS:
        fits = [(s, o) for s, o in base if applies(o)]
        for source, o in rng.sample(fits, min(4, len(fits))):
            m = copy.deepcopy(o)
            mutate(m)
            corpus.append((source, name, m))

    options = ValidationOptions(version="2.1")
    entries = []
    for index, (source, mutation, obj) in enumerate(corpus):
        try:
            result = validate_instance(obj, options)
            valid = bool(result.is_valid)
            errors = [str(e) for e in result.errors]
        except Exception as e:  # the validator raises on some malformed input
            valid, errors = False, [f"{type(e).__name__}: {e}"]
        entries.append(
            {
                "index": index,
                "id": obj.get("id"),
                "source": source,
                "mutation": mutation,
                "object": obj,
                "validator_valid": valid,
                "validator_errors": errors,
            }
        )
    with open(out, "w") as f:
        json.dump(entries, f, indent=1)
    valid = sum(e["validator_valid"] for e in entries)
    print(f"oracle: {len(entries)} objects ({valid} valid per stix2-validator) -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
