#!/usr/bin/env python3
"""A minimal client for `umbra daemon` (docs/CLI.md, "Daemon"), standard
library only.

    umbra_rpc.py [--data-dir DIR] whoami
    umbra_rpc.py [--data-dir DIR] send USERNAME MESSAGE
    umbra_rpc.py [--data-dir DIR] follow        # print events until Ctrl-C
    umbra_rpc.py --tcp 127.0.0.1:PORT --data-dir DIR whoami   # token from DIR

Exits with the status the matching `umbra` command would have.
"""

import argparse
import itertools
import json
import os
import socket
import sys

SOCKET_FILE = "umbra-daemon.sock"
TOKEN_FILE = "umbra-daemon.token"
APP_BASE = -32000  # application errors are APP_BASE - exit code


class RpcError(Exception):
    def __init__(self, error):
        super().__init__(error.get("message", ""))
        self.code = error.get("code", 0)
        self.data = error.get("data") or {}

    @property
    def exit_code(self):
        return self.data.get("exit_code", 70)


class Daemon:
    def __init__(self, data_dir, tcp=None):
        if tcp:
            host, port = tcp.rsplit(":", 1)
            self.sock = socket.create_connection((host.strip("[]"), int(port)))
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(os.path.join(data_dir, SOCKET_FILE))
        self.reader = self.sock.makefile("r", encoding="utf-8", newline="\n")
        self.ids = itertools.count(1)
        self.pending_events = []
        if tcp:
            with open(os.path.join(data_dir, TOKEN_FILE), encoding="ascii") as f:
                self.call("auth", token=f.read().strip())

    def _send(self, method, params):
        request_id = next(self.ids)
        line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        self.sock.sendall(line.encode("utf-8") + b"\n")
        return request_id

    def _read(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("the daemon closed the connection")
        return json.loads(line)

    def call(self, method, **params):
        """One request; notifications that arrive meanwhile are kept for events()."""
        request_id = self._send(method, params)
        while True:
            message = self._read()
            if message.get("id") == request_id:
                if "error" in message:
                    raise RpcError(message["error"])
                return message["result"]
            if message.get("method") == "event":
                self.pending_events.append(message["params"])

    def events(self):
        """Yields event records forever (call subscribe first)."""
        while True:
            while self.pending_events:
                yield self.pending_events.pop(0)
            message = self._read()
            if message.get("method") == "event":
                yield message["params"]


def default_data_dir():
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.environ.get("UMBRA_DATA_DIR") or os.path.join(base, "umbra")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--tcp", help="HOST:PORT of a daemon started with --tcp")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("whoami")
    send = sub.add_parser("send")
    send.add_argument("to")
    send.add_argument("message")
    sub.add_parser("follow")
    args = parser.parse_args()

    daemon = Daemon(args.data_dir, args.tcp)
    try:
        if args.command == "whoami":
            result = daemon.call("whoami")
        elif args.command == "send":
            result = daemon.call("send", to=args.to, message=args.message)
        else:
            daemon.call("subscribe")
            result = daemon.call("receive")
            for record in result["records"]:
                print(json.dumps(record), flush=True)
            for record in daemon.events():
                print(json.dumps(record), flush=True)
                if record.get("type") == "message":
                    # Only after showing it, as `umbra receive` does.
                    daemon._send("mark_reported", {"ids": [record["id"]]})
    except RpcError as e:
        for record in e.data.get("records", []):
            print(json.dumps(record))
        print(f"umbra_rpc: {e} (code {e.code})", file=sys.stderr)
        return e.exit_code if e.code <= APP_BASE else 70
    except KeyboardInterrupt:
        return 0
    for record in result["records"]:
        print(json.dumps(record))
    return result.get("exit_code", 0)


if __name__ == "__main__":
    sys.exit(main())
