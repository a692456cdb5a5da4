"""The sandbox App server's Apache: the distribution's binary with its own ServerRoot, laid out as a
Debian apache2 install (apache2.conf, ports.conf, mods-enabled, sites-available + sites-enabled links)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sec_wrapper.sandbox.processes import free_port, start_daemon, system_tool, wait_for_port

MODULES = ["mpm_event", "authz_core", "authz_host", "alias", "dir", "mime", "rewrite", "proxy", "proxy_http",
           "headers"]
MODULE_DIRS = ["/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules"]


def find_httpd() -> str:
    return system_tool(("apache2", "httpd"), "apache2")


def _module_dir() -> Path:
    for folder in MODULE_DIRS:
        if Path(folder, "mod_rewrite.so").exists():
            return Path(folder)
    raise RuntimeError("Apache modules not found (mod_rewrite.so): install the apache2 package")


def setup(root: Path, sites_root: Path, address: str = "127.0.0.1") -> dict:
    for sub in ("mods-enabled", "sites-available", "sites-enabled", "logs", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    modules = _module_dir()
    for module in MODULES:
        (root / "mods-enabled" / f"{module}.load").write_text(
            f"LoadModule {module}_module {modules}/mod_{module}.so\n"
        )
    port = free_port()
    (root / "ports.conf").write_text(f"Listen {address}:{port}\n")
    run_as = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
    (root / "apache2.conf").write_text(
        f"""# sec sandbox App server (Debian layout)
ServerRoot "{root}"
Define SITES_ROOT {sites_root}
DefaultRuntimeDir run
PidFile run/apache2.pid
Mutex file:run default
Timeout 60
KeepAlive On
{run_as}ErrorLog logs/error.log
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %O %D" timed
CustomLog logs/access.log timed
ServerName localhost
IncludeOptional mods-enabled/*.load
Include ports.conf
TypesConfig /etc/mime.types
<Directory />
    AllowOverride None
    Require all denied
</Directory>
IncludeOptional sites-enabled/*.conf
"""
    )
    return {"port": port, "address": address, "server_root": str(root),
            "config": str(root / "apache2.conf"), "binary": find_httpd()}


def add_site(root: Path, name: str, reverse_name: str, app_port: int, http_port: int, address: str = "127.0.0.1",
             api_only: bool = False) -> None:
    """One vhost per site: DocumentRoot under the Define'd sites root, the app behind mod_proxy, and the
    maintenance switch (tmp/maintenance.html present → 503 with that page)."""
    site = f"${{SITES_ROOT}}/{reverse_name}"
    # An API server's vhost serves the API paths (and the status page the health check reads) only.
    api_rule = ("    RewriteCond %{REQUEST_URI} !^/(api3/|status|maintenance\\.html)\n"
                "    RewriteRule ^ - [R=404,L]\n") if api_only else ""
    conf = f"""<VirtualHost {address}:{http_port}>
    ServerName {name}
    DocumentRoot {site}/current/public
    <Directory {site}/current/public>
        Require all granted
    </Directory>
    Alias /maintenance.html {site}/tmp/maintenance.html
    <Directory {site}/tmp>
        <Files maintenance.html>
            Require all granted
        </Files>
    </Directory>
    ErrorDocument 503 /maintenance.html
    RewriteEngine On
{api_rule}    RewriteCond {site}/tmp/maintenance.html -f
    RewriteCond %{{REQUEST_URI}} !=/maintenance.html
    RewriteRule ^ - [R=503,L]
    RewriteCond %{{REQUEST_URI}} !=/maintenance.html
    RewriteRule ^/(.*)$ http://{address}:{app_port}/$1 [P,L]
    ProxyPassReverse / http://{address}:{app_port}/
    ErrorLog logs/{reverse_name}_error.log
    CustomLog logs/{reverse_name}_access.log timed
</VirtualHost>
"""
    available = root / "sites-available" / f"{reverse_name}.conf"
    available.write_text(conf)
    link = root / "sites-enabled" / f"{reverse_name}.conf"
    if not link.is_symlink():
        os.symlink(f"../sites-available/{reverse_name}.conf", link)


def check_config(info: dict) -> None:
    result = subprocess.run([info["binary"], "-d", info["server_root"], "-f", info["config"], "-t"],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"Apache config test failed: {result.stderr.strip()}")


def start(info: dict) -> int:
    check_config(info)
    log = Path(info["server_root"]) / "logs" / "console.log"
    pid = start_daemon([info["binary"], "-d", info["server_root"], "-f", info["config"], "-DFOREGROUND"], log)
    wait_for_port(info["port"], pid=pid, log=log, address=info.get("address", "127.0.0.1"))
    return pid
