"""What `docker compose config` would catch, without a Docker engine.

usage: check_compose.py COMPOSE_FILE ENV_EXAMPLE README
"""

import re
import sys

from ruamel.yaml import YAML

VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


def env_example(path):
    """Variables set in the example, and those it names in comments."""
    values, mentioned = {}, set()
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        match = re.match(r"#?\s*([A-Z][A-Z0-9_]+)=(.*)", line)
        if not match:
            continue
        mentioned.add(match.group(1))
        if not line.startswith("#"):
            values[match.group(1)] = match.group(2)
    return values, mentioned


def interpolate(text, values, errors, where):
    def substitute(match):
        name, op, arg = match.groups()
        if name in values and (values[name] or op != ":-"):
            return values[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            errors.append(f"{where}: ${{{name}}} is required ({arg}) but not set in the example")
            return ""
        errors.append(f"{where}: ${{{name}}} has no default and is not set in the example")
        return ""

    return VARIABLE.sub(substitute, text.replace("$$", "\0")).replace("\0", "$")


def walk(node, values, errors, where):
    if isinstance(node, dict):
        return {k: walk(v, values, errors, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [walk(v, values, errors, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        return interpolate(node, values, errors, where)
    return node


def main(compose_path, example_path, readme_path):
    errors = []
    values, mentioned = env_example(example_path)
    compose = walk(YAML(typ="safe").load(open(compose_path, encoding="utf-8")), values, errors, "")
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            errors.append(f"service {name}: neither image nor build")
        for dependency in service.get("depends_on") or {}:
            if dependency not in services:
                errors.append(f"service {name}: depends on unknown service {dependency}")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")) and source not in volumes:
                errors.append(f"service {name}: volume {source} is not declared")
        for key, value in (service.get("environment") or {}).items():
            if value in ("", None):
                errors.append(f"service {name}: {key} resolves to nothing")
    readme = open(readme_path, encoding="utf-8").read()
    own = {n for n in mentioned if n.startswith(("MOODWIRE_", "REDDIT_"))}
    for name in sorted(own):
        if f"`{name}`" not in readme:
            errors.append(f"{example_path}: {name} is not documented in {readme_path}")
    for error in errors:
        print(f"check_compose: {error}", file=sys.stderr)
    if errors:
        sys.exit(1)
    print(f"check_compose: {compose_path}: {len(services)} services resolve with {example_path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
