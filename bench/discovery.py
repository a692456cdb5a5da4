"""Discovery benchmark (issue 3): a generated Apache configuration with 500 vhosts spread over Included
files, read by the collection's parser, then end to end through the site_facts module, against the raw tool
(`apache2 -S`/`httpd -S`, which parses the same configuration) measured in the same run.

Run: .venv/bin/python bench/discovery.py [--vhosts 500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.fpt.sec.plugins.module_utils.apache_config import parse_apache_config  # noqa: E402
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import binary_facts  # noqa: E402
from ansible_collections.fpt.sec.plugins.module_utils.discovery import discover_sites  # noqa: E402

MODULES = ["mpm_event", "authz_core", "alias", "dir", "mime", "rewrite", "proxy", "proxy_http"]


def find_httpd() -> str:
    for name in ("apache2", "httpd"):
        path = shutil.which(name) or f"/usr/sbin/{name}"
        if os.access(path, os.X_OK):
            return path
    sys.exit("bench/discovery: no apache2/httpd binary: install apache2")


def generate(root: Path, vhosts: int, per_file: int = 10) -> Path:
    """A Debian-style tree: apache2.conf Includes mods, ports and sites-enabled/*.conf (symlinks into
    sites-available), `per_file` vhosts a file, each site with a real site dir (current -> releases/<v>)."""
    rails = root / "var" / "rails"
    for sub in ("mods-enabled", "sites-available", "sites-enabled", "logs", "run"):
        (root / "apache" / sub).mkdir(parents=True, exist_ok=True)
    apache = root / "apache"
    modules = next(p for p in ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules") if os.path.isdir(p))
    for module in MODULES:
        line = f"LoadModule {module}_module {modules}/mod_{module}.so\n"
        (apache / "mods-enabled" / f"{module}.load").write_text(line)
    (apache / "ports.conf").write_text("Listen 127.0.0.1:18080\n")
    (apache / "apache2.conf").write_text(
        f'ServerRoot "{apache}"\nDefine SITES_ROOT {rails}\nPidFile run/apache2.pid\nErrorLog logs/error.log\n'
        "ServerName localhost\nIncludeOptional mods-enabled/*.load\nInclude ports.conf\n"
        "IncludeOptional sites-enabled/*.conf\n")
    for start in range(0, vhosts, per_file):
        blocks = []
        for n in range(start, min(start + per_file, vhosts)):
            name = f"site{n:04d}.studio.example"
            reverse = "_".join(reversed(name.split(".")))
            site = rails / reverse
            (site / "releases" / "8.1.2").mkdir(parents=True, exist_ok=True)
            (site / "releases" / "8.1.2" / "VERSION").write_text("8.1.2\n")
            (site / "shared" / "config").mkdir(parents=True, exist_ok=True)
            (site / "shared" / "config" / "database.yml").write_text(
                f"production:\n  host: db1\n  port: 5432\n  database: {reverse}\n  username: sg\n  password: x\n")
            if not (site / "current").exists():
                os.symlink("releases/8.1.2", site / "current")
            blocks.append(
                f"<VirtualHost 127.0.0.1:18080>\n  ServerName {name}\n  ServerAlias alias{n}.studio.example\n"
                f"  DocumentRoot ${{SITES_ROOT}}/{reverse}/current/public\n"
                f"  RewriteEngine On\n  RewriteRule ^/(.*)$ http://127.0.0.1:9000/$1 [P,L]\n</VirtualHost>\n")
        available = apache / "sites-available" / f"sites{start:04d}.conf"
        # Conditional sections, evaluated as Apache does (issue 15): all true here, so every vhost is loaded.
        available.write_text("<IfVersion >= 2.4>\n<IfDirective RewriteEngine>\n<IfModule mod_version.c>\n"
                             + "".join(blocks) + "</IfModule>\n</IfDirective>\n</IfVersion>\n")
        os.symlink(f"../sites-available/{available.name}", apache / "sites-enabled" / available.name)
    return apache / "apache2.conf"


def timed(func, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vhosts", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    httpd = find_httpd()
    with tempfile.TemporaryDirectory(prefix="sec-bench-discovery-") as tmp:
        config = generate(Path(tmp), args.vhosts)
        server_root = str(config.parent)

        def raw() -> subprocess.CompletedProcess:
            return subprocess.run([httpd, "-d", server_root, "-f", str(config), "-S"], capture_output=True,
                                  text=True, check=True)

        # The binary's -v and -l, which discovery reads once per Apache instance (discover_sites times them).
        version, compiled = binary_facts(httpd)

        def parse() -> object:
            return parse_apache_config(str(config), server_root=server_root, version=version,
                                       compiled_modules=compiled)

        def discover() -> object:
            return discover_sites(apache_config=str(config))

        def module() -> dict:
            # site_facts end to end as Ansible runs it: a fresh python process per call, arguments as JSON.
            payload = json.dumps({"ANSIBLE_MODULE_ARGS": {"apache_config": str(config)}})
            out = subprocess.run([sys.executable, "-m", "ansible_collections.fpt.sec.plugins.modules.site_facts"],
                                 input=payload, capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT / "collections")})
            return json.loads(out.stdout)

        t_raw, raw_out = timed(raw, args.repeat)
        t_parse, parsed = timed(parse, args.repeat)
        t_discover, found = timed(discover, args.repeat)
        t_module, answer = timed(module, args.repeat)
        vhosts_raw = sum(1 for line in raw_out.stdout.splitlines() if "namevhost" in line)
        assert len(parsed.vhosts) == args.vhosts == vhosts_raw, (len(parsed.vhosts), vhosts_raw)
        assert len(found["sites"]) == args.vhosts and len(answer["sites"]) == args.vhosts
        print(f"{args.vhosts} vhosts in {args.vhosts // 10} Included files (median of {args.repeat})")
        print(f"  raw {Path(httpd).name} -S           {t_raw * 1000:8.1f} ms")
        print(f"  parser (module_utils)     {t_parse * 1000:8.1f} ms   {t_parse / t_raw:5.2f}x raw")
        print(f"  discover_sites (+ sites)  {t_discover * 1000:8.1f} ms   {t_discover / t_raw:5.2f}x raw")
        print(f"  site_facts module process {t_module * 1000:8.1f} ms   {t_module / t_raw:5.2f}x raw")


if __name__ == "__main__":
    main()
