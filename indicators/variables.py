"""Harmonised variables and their public code lists (DESIGN section 2).

Every categorical variable ends its code list with ``UNK``: values that are missing or
cannot be mapped become ``UNK`` and are counted, never dropped. Keeping ``UNK`` last lets
a table dimension that excludes it use the same positions as the variable itself.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AGE",
    "AGE_MISSING",
    "CATEGORICAL",
    "COUNTRY_GROUPS",
    "EU27_2020",
    "ISO_3166_ALPHA2",
    "UNK",
    "Variable",
    "country_group",
]

UNK = "UNK"
AGE = "age"
AGE_MISSING = 255  # code stored for a missing or implausible age (ages are 0..120)


@dataclass(frozen=True)
class Variable:
    """A harmonised categorical variable.

    Attributes:
        name: Harmonised name, e.g. ``"c_birth"``.
        codes: Public code list; ``UNK`` is always last.
        description: What the variable means.
    """

    name: str
    codes: tuple[str, ...]
    description: str

    def index(self, code: str) -> int:
        """Position of ``code`` in the code list."""
        return self.codes.index(code)


CATEGORICAL: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("sex", ("M", "F", UNK), "sex"),
        Variable(
            "c_birth",
            ("NAT", "EU27_2020_FOR", "NEU27_2020_FOR", UNK),
            "country of birth group, relative to the node's country",
        ),
        Variable(
            "citizen",
            ("NAT", "EU27_2020_FOR", "NEU27_2020_FOR", "STLS", UNK),
            "citizenship group, relative to the node's country",
        ),
        Variable("wstatus", ("EMP", "UNE", "INAC", UNK), "ILO labour status"),
        Variable("isced11", ("ED0-2", "ED3_4", "ED5-8", UNK), "highest educational attainment"),
    )
}

# Variables whose values may be ISO 3166 alpha-2 country codes grouped by the node's country.
COUNTRY_GROUPS = ("c_birth", "citizen")

# EU member states since 1 February 2020, ISO 3166 alpha-2 (Eurostat writes Greece EL).
EU27_2020 = frozenset(
    "AT BE BG CY CZ DE DK EE EL ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)

ISO_3166_ALPHA2 = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK
    DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR
    GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM
    KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP
    MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL
    PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST
    SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG
    VI VN VU WF WS YE YT ZA ZM ZW EL XK""".split()  # noqa: SIM905  # noqa: SIM905
)

STATELESS = frozenset({"STLS", "XX"})


def country_group(value: str, home: str, variable: str) -> str | None:
    """Group one ISO 3166 alpha-2 value relative to the node's own country.

    Args:
        value: A country code as found in the data (case and spaces ignored).
        home: The node's country, ISO 3166 alpha-2.
        variable: ``"c_birth"`` or ``"citizen"`` (only citizenship knows ``STLS``).

    Returns:
        The harmonised code, or None when the value is not a country code.
    """
    code = value.strip().upper()
    if variable == "citizen" and code in STATELESS:
        return "STLS"
    if code not in ISO_3166_ALPHA2:
        return None
    if _same_country(code, home):
        return "NAT"
    return "EU27_2020_FOR" if code in EU27_2020 else "NEU27_2020_FOR"


def _same_country(code: str, home: str) -> bool:
    greece = {"EL", "GR"}
    return code == home or (code in greece and home in greece)
