"""`metrics serve` and `metrics tokens {create,list,revoke}`.

metrics serve [--host 127.0.0.1] [--port 8000]
metrics tokens create --user U [--team T] [--org O] [--admin]   (the token is the last line)
metrics tokens list
metrics tokens revoke TOKEN_ID
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

from serving.http.connections import check_http_target
from serving.http.tokens import TokenError, TokenStore
from warehouse import WarehouseConfig, connect


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port {port} is outside 1..65535")
    return port


def serve_main(argv: Sequence[str]) -> int:
    """Run the server in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        prog="metrics serve", description="Serve the HTTP API and dashboard page."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on")
    args = parser.parse_args(list(argv))
    try:
        check_http_target(WarehouseConfig())
    except ValueError as error:
        print(f"metrics serve: configuration error: {error}", file=sys.stderr)
        return 2
    import uvicorn

    from serving.http.app import create_app

    app = create_app()
    # What is imported and built by now lives as long as the process (about 180,000 objects,
    # most of them Dagster's modules): frozen, full collections no longer walk it. Requests
    # suspended on Redis outlive young collections, so under load a full collection came every
    # few hundred milliseconds and cost a cached dashboard about 60 us of CPU a request.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def tokens_main(argv: Sequence[str]) -> int:
    """Create, list or revoke API tokens in the configured warehouse."""
    parser = argparse.ArgumentParser(prog="metrics tokens", description="API tokens.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", help="a new token, printed as the last line")
    create.add_argument("--user", required=True, help="the user the token acts for")
    create.add_argument("--team", help="the user's team")
    create.add_argument("--org", help="the user's organization")
    create.add_argument("--admin", action="store_true", help="organization admin; admin endpoints")
    commands.add_parser("list", help="every token (without secrets)")
    revoke = commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", help="the id shown by `metrics tokens list`")
    args = parser.parse_args(list(argv))
    try:
        config = WarehouseConfig()
        check_http_target(config)
        with connect(config, wait_seconds=10) as wh:
            store = TokenStore(wh)
            if args.command == "create":
                record, token = store.create(args.user, args.team, args.org, is_admin=args.admin)
                print(
                    f"created token {record.token_id} for user {record.user_id}"
                    f" (team {record.team or '-'}, org {record.organization or '-'},"
                    f" admin {'yes' if record.is_admin else 'no'}); it is shown only once:"
                )
                print(token)
                return 0
            if args.command == "list":
                print("token_id      user  team  org  admin  created  revoked")
                for r in store.list():
                    print(
                        f"{r.token_id}  {r.user_id}  {r.team or '-'}  {r.organization or '-'}"
                        f"  {'yes' if r.is_admin else 'no'}"
                        f"  {r.created_at.isoformat(timespec='seconds')}"
                        f"  {r.revoked_at.isoformat(timespec='seconds') if r.revoked_at else '-'}"
                    )
                return 0
            if not store.revoke(args.token_id):
                print(f"metrics tokens revoke: no live token {args.token_id}", file=sys.stderr)
                return 1
            print(f"revoked token {args.token_id}")
            return 0
    except (TokenError, ValueError) as error:
        print(f"metrics tokens {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(tokens_main(sys.argv[1:]))
