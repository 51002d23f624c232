import time

from django.core.management.base import BaseCommand

from ledger import reconcile


class Command(BaseCommand):
    help = "Check every ledger invariant over all data; exit 1 and list violations if any."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        started = time.monotonic()
        violations, counts = reconcile.run()
        elapsed = time.monotonic() - started
        if options["json"]:
            import json

            self.stdout.write(
                json.dumps(
                    {
                        "ok": not violations,
                        "checks": len(reconcile.CHECKS),
                        "violations": [{"check": v.check, **v.detail} for v in violations],
                        "rows": {k[5:]: v for k, v in counts.items() if k.startswith("rows:")},
                        "seconds": round(elapsed, 3),
                    },
                    default=str,
                )
            )
        else:
            rows = ", ".join(f"{k[5:]}={v}" for k, v in counts.items() if k.startswith("rows:"))
            for violation in violations:
                self.stdout.write(f"VIOLATION {violation}")
            status = "FAILED" if violations else "OK"
            self.stdout.write(
                f"reconcile {status}: {len(reconcile.CHECKS)} checks, "
                f"{len(violations)} violations, {rows}, {elapsed:.2f}s"
            )
        if violations:
            raise SystemExit(1)
