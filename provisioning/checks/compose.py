#!/usr/bin/env python3
"""Checks the stack's house rules on the compose file docker-compose resolved.

Usage: compose.py RESOLVED_CONFIG_YAML
(run from the repository root). RESOLVED_CONFIG_YAML is the output of
`docker-compose -f docker-compose.yaml config`, i.e. already validated against
the compose schema and interpolated (with no .env: `docker compose up` alone
must work). Checked here:
  - images pinned to a version (compose images and the Dockerfile's base
    images), the Rust image at least the workspace's rust-version;
  - every published port bound to 127.0.0.1; a health check on every
    long-running service; data kept in named volumes;
  - secrets: a one-shot init service (provisioning/compose-init.sh) writes the
    Grafana admin password and the exporter token into a named volume, and
    both wait for it to complete; Grafana reads the password from that volume
    (GF_SECURITY_ADMIN_PASSWORD__FILE), never from a plain variable; the
    exporter runs --demo with --token-file in that volume;
  - Grafana: the plugin is allowed unsigned and mounted from the plugin-build
    output, which must have completed first; no deprecated GF_INSTALL_PLUGINS;
    the provisioning folders exist and agree with the dashboards (datasource
    uid, dashboard path) and with prometheus.yml's targets (service names and
    ports);
  - .dockerignore keeps build output and local secrets out of the build context.
Needs PyYAML: it runs under the Python that runs docker-compose, which has it.
"""

import json
import pathlib
import re
import sys

import yaml

PLUGIN_ID = "statescope-statemachine-panel"
PLUGIN_DIR = f"/var/lib/grafana/plugins/{PLUGIN_ID}"
INIT_SCRIPT = "provisioning/compose-init.sh"
DATA_DIRS = {
    "exporter": "/var/lib/statescope",
    "prometheus": "/prometheus",
    "alertmanager": "/alertmanager",
    "grafana": "/var/lib/grafana",
}
problems = []


def check(ok, msg):
    if not ok:
        problems.append(msg)
    return ok


def pinned(image):
    """name:tag with a tag holding a version number, not `latest`."""
    m = re.fullmatch(r"(?:[^/]+/)*[^:/]+:([^:@/]+)", image or "")
    return bool(m) and m.group(1) != "latest" and bool(re.search(r"\d", m.group(1)))


def mounts(service):
    """(source, target, type) of each volume entry, short or long syntax."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append((v.get("source"), v.get("target"), v.get("type")))
        else:
            parts = v.split(":")
            kind = "bind" if parts[0].startswith(("/", ".")) else "volume"
            out.append((parts[0], parts[1] if len(parts) > 1 else parts[0], kind))
    return out


def version_tuple(text):
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def completed_first(service, dep):
    deps = service.get("depends_on") or {}
    return isinstance(deps, dict) and (deps.get(dep) or {}).get("condition") == "service_completed_successfully"


def in_volume(service, path, volume):
    """Whether `path` lies in the named `volume` as `service` mounts it."""
    return any(
        k == "volume" and src == volume and path.startswith(t.rstrip("/") + "/") for src, t, k in mounts(service)
    )


def main(config_path):
    cfg = yaml.safe_load(pathlib.Path(config_path).read_text())
    services = cfg.get("services", {})
    declared_volumes = set(cfg.get("volumes") or {})
    for name in ("init", "exporter", "prometheus", "alertmanager", "grafana", "plugin-build"):
        check(name in services, f"no {name} service")

    for name, s in services.items():
        if "build" in s:
            check(s["build"].get("target"), f"{name}: builds without a Dockerfile target")
        else:
            check(pinned(s.get("image")), f"{name}: image {s.get('image')!r} is not pinned to a version")
        for p in s.get("ports", []):
            text = p if isinstance(p, str) else f"{p.get('host_ip', '')}:{p.get('published')}:{p.get('target')}"
            check(text.startswith("127.0.0.1:"), f"{name}: port {text} is not published on 127.0.0.1 only")
        long_running = s.get("restart", "no") != "no"
        if long_running:
            test = (s.get("healthcheck") or {}).get("test")
            check(test and not (s.get("healthcheck") or {}).get("disable"), f"{name}: no health check")
        for source, target, kind in mounts(s):
            if kind == "volume":
                check(source in declared_volumes, f"{name}: volume {source} is not declared at the top level")
            else:
                check(pathlib.Path(source).exists(), f"{name}: bind source {source} does not exist")
        if name in DATA_DIRS:
            check(
                any(t == DATA_DIRS[name] and k == "volume" for _, t, k in mounts(s)),
                f"{name}: its data ({DATA_DIRS[name]}) is not in a named volume",
            )

    # --- secrets: written once by the init service, read from its volume -------------
    init = services.get("init", {})
    check(init.get("restart", "no") == "no", "init: a one-shot service must not restart")
    init_cmd = init.get("command") or []
    init_cmd = init_cmd.split() if isinstance(init_cmd, str) else init_cmd
    script = next((t for src, t, k in mounts(init) if k == "bind" and src.endswith(INIT_SCRIPT)), None)
    check(script and script in init_cmd, f"init: does not run {INIT_SCRIPT} (mounted into the container)")
    init_env = init.get("environment") or {}
    secrets_dir = (init_env.get("SECRETS_DIR") if isinstance(init_env, dict) else None) or "/run/statescope"
    secrets_volume = next((src for src, t, k in mounts(init) if k == "volume" and t == secrets_dir), None)
    check(secrets_volume, f"init: {secrets_dir} (where {INIT_SCRIPT} writes) is not a named volume")
    own = [t for src, t, k in mounts(init) if k == "bind" and src.rstrip("/").endswith("provisioning/secrets")]
    check(own == ["/own"], "init: provisioning/secrets (init.sh's own token) is not mounted at /own")

    ex = services.get("exporter", {})
    cmd = ex.get("command") or []
    cmd = cmd.split() if isinstance(cmd, str) else cmd
    check("--demo" in cmd, "exporter: not started with --demo")
    token_file = cmd[cmd.index("--token-file") + 1] if "--token-file" in cmd else ""
    check(token_file == "/run/statescope/statescope_token" and in_volume(ex, token_file, secrets_volume),
          f"exporter: --token-file {token_file!r} is not the init service's statescope_token")
    check(completed_first(ex, "init"), "exporter: does not wait for init to complete successfully")

    gf = services.get("grafana", {})
    env = gf.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    check("GF_SECURITY_ADMIN_PASSWORD" not in env,
          "grafana: GF_SECURITY_ADMIN_PASSWORD is set in the environment (use the init service's file)")
    pw_file = env.get("GF_SECURITY_ADMIN_PASSWORD__FILE") or ""
    check(pw_file == "/run/statescope/grafana_admin_password" and in_volume(gf, pw_file, secrets_volume),
          f"grafana: GF_SECURITY_ADMIN_PASSWORD__FILE {pw_file!r} is not the init service's grafana_admin_password")
    check(completed_first(gf, "init"), "grafana: does not wait for init to complete successfully")
    for name, s in services.items():
        e = s.get("environment") or {}
        check("GF_INSTALL_PLUGINS" not in (e if isinstance(e, dict) else dict(x.split("=", 1) for x in e)),
              f"{name}: GF_INSTALL_PLUGINS is deprecated; use GF_PLUGINS_PREINSTALL")

    # --- Grafana ----------------------------------------------------------------------
    check(PLUGIN_ID in (env.get("GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS") or "").split(","),
          f"grafana: {PLUGIN_ID} is not allowed as an unsigned plugin")
    plugin_build_out = [src for src, t, k in mounts(services.get("plugin-build", {})) if t == "/out"]
    check(any(t == PLUGIN_DIR and src in plugin_build_out for src, t, _ in mounts(gf)),
          f"grafana: {PLUGIN_DIR} is not the plugin-build service's /out volume")
    check(completed_first(gf, "plugin-build"), "grafana: does not wait for plugin-build to complete successfully")
    targets = {t: src for src, t, _ in mounts(gf)}
    prov = pathlib.Path(targets.get("/etc/grafana/provisioning", "missing"))
    check(prov.is_dir(), "grafana: /etc/grafana/provisioning is not mounted from a folder")

    # Dashboard provider path = where the dashboards are mounted.
    dash_paths = []
    for f in sorted((prov / "dashboards").glob("*.yaml")):
        for p in yaml.safe_load(f.read_text()).get("providers", []):
            dash_paths.append(p["options"]["path"])
            check(p.get("folder") == "Statescope", f"{f}: provider folder is not Statescope")
            mounted = pathlib.Path(targets.get(p["options"]["path"], "missing"))
            check(mounted.is_dir() and any(mounted.glob("*.json")),
                  f"{f}: dashboards path {p['options']['path']} is not a mounted folder of dashboards")
    check(dash_paths, "grafana: no dashboard provider")
    # Datasource uids = the dashboards' default datasource.
    ds_uids = {}
    for f in sorted((prov / "datasources").glob("*.yaml")):
        for d in yaml.safe_load(f.read_text()).get("datasources", []):
            ds_uids[d["uid"]] = d
    default = [d for d in ds_uids.values() if d.get("isDefault")]
    check(len(default) == 1 and default[0]["type"] == "prometheus", "grafana: the default datasource is not Prometheus")
    check(any(d["type"] == "alertmanager" for d in ds_uids.values()), "grafana: no Alertmanager datasource")
    for d in ds_uids.values():
        host, _, port = re.sub(r"^https?://", "", d.get("url", "")).partition(":")
        check(host in services and port.split("/")[0] in ports_of(services[host]),
              f"datasource {d['name']}: {d.get('url')} is not a service of the stack")
    for path in dash_paths:
        for f in pathlib.Path(targets.get(path, "missing")).glob("*.json"):
            dash = json.loads(f.read_text())
            for v in dash.get("templating", {}).get("list", []):
                if v.get("type") == "datasource":
                    uid = (v.get("current") or {}).get("value")
                    check(uid in ds_uids, f"{f.name}: datasource variable defaults to {uid!r}, not a provisioned uid")

    # --- Prometheus targets are the stack's services ---------------------------------
    pm = {t: src for src, t, _ in mounts(services.get("prometheus", {}))}
    prom_cfg = yaml.safe_load((pathlib.Path(pm.get("/etc/prometheus", "missing")) / "prometheus.yml").read_text())
    for job in prom_cfg.get("scrape_configs", []):
        for sc in job.get("static_configs", []):
            for target in sc.get("targets", []):
                host, _, port = target.partition(":")
                ok = host == "localhost" and job["job_name"] == "prometheus"
                ok = ok or (host in services and port in ports_of(services[host]))
                check(ok, f"prometheus.yml: job {job['job_name']} scrapes {target}, not a service of the stack")
    check(any(j["job_name"] == "statescope" for j in prom_cfg.get("scrape_configs", [])),
          "prometheus.yml: no job named statescope (the alert rules and dashboards select job=\"statescope\")")

    check_dockerfile(pathlib.Path("Dockerfile"))
    check_dockerignore(pathlib.Path(".dockerignore"))

    for p in problems:
        print(f"compose: {p}", file=sys.stderr)
    if problems:
        return 1
    n_ports = sum(len(s.get("ports", [])) for s in services.values())
    n_health = sum(1 for s in services.values() if s.get("healthcheck"))
    print(f"compose: {len(services)} services, images pinned, {n_ports} ports on 127.0.0.1, {n_health} health "
          f"checks, {len(declared_volumes)} named volumes, Grafana/Prometheus provisioning consistent")
    return 0


def ports_of(service):
    """Container ports a service listens on: its published targets, or its image's default."""
    ports = set()
    for p in service.get("ports", []):
        ports.add(str(p.get("target")) if isinstance(p, dict) else p.split(":")[-1].split("/")[0])
    return ports


def check_dockerfile(path):
    text = path.read_text()
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I))
    for f in froms:
        image = args.get(f[2:-1], f) if f.startswith("${") else f
        if image in stages:
            continue
        check(pinned(image), f"Dockerfile: base image {image!r} is not pinned to a version")
    check({"exporter", "plugin"} <= stages, "Dockerfile: needs the targets exporter and plugin")
    rust = args.get("RUST_IMAGE", "")
    ws = re.search(r'^rust-version\s*=\s*"([^"]+)"', pathlib.Path("Cargo.toml").read_text(), re.M)
    if check(ws and rust, "Dockerfile: no RUST_IMAGE, or no rust-version in Cargo.toml"):
        check(version_tuple(rust.split(":")[1]) >= version_tuple(ws.group(1)),
              f"Dockerfile: {rust} is older than the workspace's rust-version {ws.group(1)}")
    check("wasm32-unknown-unknown" in text, "Dockerfile: the plugin build lacks the wasm32 target")
    check(re.search(r"wasm-bindgen-cli --version \"\$version\"", text) and "Cargo.lock" in text,
          "Dockerfile: wasm-bindgen-cli is not installed at Cargo.lock's wasm-bindgen version")
    check("npm install" in text and "npm run build" in text, "Dockerfile: the plugin is not built with npm install + npm run build")
    check(re.search(r"^USER\s+(?!root)\S+", text, re.M), "Dockerfile: the exporter runs as root")


def check_dockerignore(path):
    lines = {ln.strip().strip("/") for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    for needed in ("target", "node_modules", ".git", ".env", "provisioning/secrets", "dist"):
        check(needed in lines, f".dockerignore: {needed} is sent to the build context")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
