"""Run the fake by hand: ``python -m zenml_collab.testing.fake_gcp --port 8089``.

Prints the environment to export and the key file of an owner member, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from zenml_collab.testing.fake_gcp.fake import FakeGCP


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zenml_collab.testing.fake_gcp")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--project", default="fake-project")
    parser.add_argument("--owner", default="owner@fake-project.iam.gserviceaccount.com")
    parser.add_argument("--mysql-url", default=os.environ.get("COLLAB_TEST_MYSQL_URL"),
                        help="MySQL server behind the instances (default $COLLAB_TEST_MYSQL_URL)")
    args = parser.parse_args(argv)
    # SIGTERM must unwind through `finally` so the key files and fake-gcs-server go away.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    fake = FakeGCP(port=args.port).start()
    fake.add_project(args.project, owner=args.owner)
    key_file = fake.add_member(args.owner)
    if args.mysql_url:
        fake.attach_mysql(args.mysql_url)
    for name, value in fake.env.items():
        print(f"export {name}={value}")
    print(f"export GOOGLE_APPLICATION_CREDENTIALS={key_file}")
    print(f"# project {args.project}, owner {args.owner}; Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
