"""The generated corpus: clean treatment summaries, and the same with one identifier planted.

Everything is synthetic. Clean summaries carry what a real one does (dates
of service, treatments, settings, products, Fitzpatrick types, follow-up
intervals) but no identifier; planted ones add one line per rule.
"""

from __future__ import annotations

import random

TREATMENTS = (
    "Chemical peel: 30% salicylic acid, 2 layers, neutralized after 4 minutes",
    "Chemical peel: 20% glycolic acid, pH 3.5, 3 minutes contact time",
    "Microneedling: 0.5 mm depth on forehead, 1.0 mm on cheeks, 4 passes",
    "LED therapy: 633 nm red light, 20 minutes, 10 cm from skin",
    "LED therapy: 415 nm blue light, 15 minutes, acne-prone zones",
    "Hydrafacial: cleanse, extract, hydrate; 3 serum cartridges",
    "Dermaplaning: single pass, 10 blade, no nicks",
    "IPL photofacial: 560 nm filter, 14 J/cm2, 2 passes",
    "Enzyme peel: pumpkin enzyme, 8 minutes under steam",
    "Microdermabrasion: diamond tip 100 grit, light suction",
)
PRODUCTS = (
    "Example Labs Gentle Cleanser", "Example Labs Vitamin C Serum 15%", "Mineral sunscreen SPF 50",
    "Hyaluronic acid serum 2%", "Ceramide barrier cream", "Niacinamide 10% toner",
    "Azelaic acid 10% gel", "Tinted sunscreen SPF 30", "Peptide eye cream", "Bakuchiol night oil",
)
SKIN_TYPES = ("I", "II", "III", "IV", "V", "VI")
FOLLOW_UPS = ("in 2 weeks", "in 4 weeks (session 2 of 6)", "in 6 weeks", "after 3 sessions",
              "in 10 days for review", "in 1 month, then every 3 months")
RESPONSES = ("mild erythema, resolved within 2 hours", "no adverse reaction",
             "slight flaking on day 3, expected", "transient warmth for 30 minutes",
             "pinpoint bleeding, resolved before end of visit")
AFTERCARE = ("avoid retinoids for 7 days", "apply SPF 30+ every 2 hours outdoors",
             "no exfoliants for 72 hours", "keep the area clean and dry for 24 hours",
             "resume regular skincare in 3 days", "no makeup for 12 hours")


def clean_summary(seed: int) -> list[str]:
    """The lines of one clean, realistic (synthetic) treatment summary."""
    rng = random.Random(seed)
    day = rng.randint(1, 28)
    return [
        "Treatment summary - Example Dermatology Clinic (synthetic test document)",
        "Client: [redacted]",
        f"Date of service: 2024-{rng.randint(1, 12):02d}-{day:02d}",
        f"Fitzpatrick skin type: {rng.choice(SKIN_TYPES)}",
        f"Treatment: {rng.choice(TREATMENTS)}",
        f"Also performed: {rng.choice(TREATMENTS)}",
        f"Products used: {', '.join(rng.sample(PRODUCTS, 3))}",
        f"Skin response: {rng.choice(RESPONSES)}",
        f"Aftercare: {rng.choice(AFTERCARE)}; {rng.choice(AFTERCARE)}",
        f"Follow-up: {rng.choice(FOLLOW_UPS)}",
        f"Next appointment: {rng.randint(1, 12):02d}/{day:02d}/2025 at {rng.randint(9, 17)}:{rng.choice(('00', '30'))}",
        "Contraindications reviewed: none noted; no isotretinoin in past 6 months",
        f"Patch test: {rng.choice((24, 48))} hours, negative",
        "Clinician: Dr. Test Clinician, licensed dermatologist",
        "Notes: Client tolerated treatment well. Spa may continue the protocol.",
    ]


# rule id -> lines that plant one identifier of that rule (all synthetic), written the ways
# real summaries write them: separators, label variants, a label a few words before its value.
# A "\n" splits a line where a typesetter would have broken (and hyphenated) it.
PLANTED = {
    "person-name": ["Patient: Jane Q. Testperson", "Client name: Testa Exampledottir", "Name: Doe, Jane",
                    "CLIENT: TESTA EXAMPLEDOTTIR", "Patient: Zorbly", "Client: Quenta, returning for session 3"],
    "ssn": ["SSN: 123-45-6789", "Social Security number 123456789", "SSN: 123 45 6789", "SS# 123.45.6789",
            "Social security number (on file): 123456789"],
    "phone": ["Phone: (555) 010-1234", "Fax: 555-010-9999", "Mobile +1 555 010 0142", "Tel. 5550100199",
              "Referring office +44 20 7946 0958", "Phone no. 0044 20 7946 0958", "Mobile: +49 (0)30 1234 5678",
              "call 555.010.1234 to book"],
    "email": ["Email: test.patient@example.com", "Contact: effie.officer@example.org"],
    "url": ["Portal: https://portal.example.com/records/4471", "See www.example.org/test-patient"],
    "ip-address": ["Uploaded from 192.0.2.44", "Device address 2001:db8::17", "Uploaded from 10.0.0.7.",
                   "Kiosk 172.16.254.3, front desk", "Loopback test from ::1"],
    "medical-record-number": ["MRN: 00482913", "Medical record no. MR-2291-07", "MRN 0048 2913", "Patient ID: PT.44812",
                              "File number: 2024/0193", "Chart Nr. 55821", "MRN (this clinic): 00482913"],
    "health-plan-number": ["Member ID: XJH4418207", "Insurance no. 77812-0042", "Beneficiary No. 77812 0042",
                           "Policy #: PL.2291.07", "Member ID on file: XJH4418207",
                           "Insurance bene-\nficiary number: 77812-0042"],
    "account-number": ["Account number: 4400-1234-88", "Acct. No. 9912 0044", "Account Nr: 4400.1234.88",
                       "Billing account ID: BA-55012"],
    "license-number": ["Driver's license: D1234-5678-9012", "Licence no. LE-20931", "Certificate number: LE 20931",
                       "Cert. No. 7731002", "Certificate number (state board): 7731002"],
    "vehicle-vin": ["Vehicle VIN 1HGCM82633A004352"],
    "vehicle-plate": ["License plate: 7ABC123", "Plate no. TST-4821"],
    "device-identifier": ["Pacemaker serial number: PMK-88213", "Implant UDI: 00844588003288", "Serial No. PMK 88213",
                          "Device ID: DEV.4471"],
    "date-of-birth": ["DOB: 03/14/1961", "Date of birth: March 14, 1961", "DOB 14.03.1961", "Date of birth: 14th March 1961",
                      "Born on the 14th of March, 1961", "Date of birth (per ID): 1961/03/14"],
    "admission-date": ["Admitted: 02/01/2024", "Admitted on the 1st of February 2024"],
    "discharge-date": ["Discharge date: 2024-02-05", "Discharged on 5th February, 2024"],
    "death-date": ["Date of death: 04/30/2023", "Date of death: April 30th, 2023"],
    "age-over-89": ["Age: 93", "A 94yo client", "95 years of age"],
    "street-address": ["Address: 100 Example Street", "Mail to PO Box 1234"],
    "zip-code": ["Springfield, IL 62701"],
}
