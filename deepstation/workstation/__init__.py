"""The workstation that proves it works: `deepstation doctor` (doctor.py running the checks/ registry, with peak
figures from gpuspecs.py) and `deepstation env snapshot|check` (envsnap.py). Nothing heavy is imported here."""
