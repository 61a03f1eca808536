"""Secret-like values in backend objects, replaced by `<redacted>` before the raw view shows them.

Values are redacted, never keys: the user sees that `HF_TOKEN` was set, not to what. Two rules:
- by name, where names are user-chosen variable names: Ray `runtime_env.env_vars` and job
  `metadata`, Kubernetes `env[]` entries (`{name, value}`; `valueFrom` refs are names, kept),
  annotations, KFP runtime parameters; a name is secret-like when one of its words is token,
  secret, password, key, credential, auth, cookie, private, session, dsn, ... (`looks_secret`);
- by shape, in every string: AWS key ids, GitHub / Slack / Hugging Face / OpenAI tokens, JWTs,
  PEM private keys, the password in `scheme://user:password@`, and `--token x` / `TOKEN=x` inside
  command lines.
JSON held in a string (`kubectl.kubernetes.io/last-applied-configuration`, a serialized runtime
env) is parsed and redacted the same way; if it cannot be parsed it is redacted whole.

Standard library only.
"""

from __future__ import annotations

import json
import re
from typing import Any

REDACTED = "<redacted>"

# Words that make a variable name secret-like (names are split into words at _ - . / space and
# camelCase). "tokenizer", "max_tokens" and "keyboard" are not secret-like: whole words only.
_SECRET_WORDS = frozenset({
    "token", "secret", "secrets", "password", "passwd", "pwd", "passphrase", "pass", "key", "apikey",
    "credential", "credentials", "creds", "auth", "authorization", "cookie", "cookies", "private",
    "privatekey", "session", "sessionid", "dsn", "connstr", "connectionstring", "signature",
})
# Glued words ("authtoken", "hftoken", "dbpassword") end like this.
_SECRET_ENDINGS = ("token", "secret", "password", "passwd", "apikey", "cookie", "credentials")
# In command lines only strong words count: `--session-name x` or `--key-column y` stay readable.
_STRONG_WORDS = frozenset({
    "token", "secret", "password", "passwd", "pwd", "passphrase", "apikey", "credential", "credentials",
    "cookie", "dsn", "privatekey", "connectionstring",
})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

_SHAPES = [re.compile(p) for p in (
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",  # AWS access key ids
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"\bxox[abposr]-[A-Za-z0-9-]{8,}",  # Slack
    r"\bhf_[A-Za-z0-9]{20,}",  # Hugging Face
    r"\bsk-[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
    r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}",  # Stripe
    r"\bAIza[0-9A-Za-z_-]{30,}",  # Google API keys
    r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",  # JWTs
)]
_PEM = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?:.*?-----END[A-Z0-9 ]*-----|.*)", re.DOTALL)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]+@")
# Inside a longer string: `--hf-token x`, `--password=x` (flags), `HF_TOKEN=x`, `"api_key": "x"`.
_VALUE = r"""(?P<value>"[^"]*"|'[^']*'|[^\s"',;}]+)"""
_FLAG = re.compile(r"(?P<name>(?<![\w-])--?[A-Za-z][\w.-]*)(?P<sep>=|\s+)" + _VALUE)
_ASSIGN = re.compile(r"""(?P<name>\b[A-Za-z_][\w.-]*)(?P<sep>=|["']?\s*:\s*)""" + _VALUE)
_NAME_VALUE_KEYS = ("value", "constant", "defaultValue", "default", "stringValue", "string_value")
# Maps whose keys are user-chosen names and whose string values those names describe.
_NAMED_MAPS = frozenset({"env_vars", "envVars", "env", "environment", "metadata", "annotations", "parameters",
                         "params", "arguments", "secrets"})
# Strings that hold an object of their own (JSON or YAML): parsed and redacted.
_EMBEDDED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", "serialized_runtime_env",
                       "runtimeEnvYAML", "serveConfigV2"})


def words(name: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(name)]


def looks_secret(name: str, *, strong_only: bool = False) -> bool:
    """Does a variable named `name` probably hold a credential?"""
    found = words(name)
    vocabulary = _STRONG_WORDS if strong_only else _SECRET_WORDS
    if any(w in vocabulary for w in found):
        return True
    if any(a == "connection" and b == "string" or a == "api" and b == "key" or a == "private" and b == "key"
           for a, b in zip(found, found[1:])):
        return True
    return any(w.endswith(_SECRET_ENDINGS) for w in found)


def redact_text(text: str) -> tuple[str, int]:
    """`text` with secret-shaped parts replaced; and how many were."""
    count = 0
    for shape in _SHAPES:
        text, n = shape.subn(REDACTED, text)
        count += n
    if "-----BEGIN" in text:
        text, n = _PEM.subn(REDACTED, text)
        count += n
    if "://" in text:
        text, n = _URL_PASSWORD.subn(lambda m: f"{m.group(1)}:{REDACTED}@", text)
        count += n

    def inline(match: re.Match[str]) -> str:
        nonlocal count
        name, value = match.group("name"), match.group("value")
        if value.startswith("-") or value.strip("'\"") in ("", REDACTED) or not looks_secret(name, strong_only=True):
            return match.group(0)
        count += 1
        return f"{name}{match.group('sep')}{REDACTED}"

    for pattern in (_FLAG, _ASSIGN):
        text = pattern.sub(inline, text)
    return text, count


class _Redactor:
    def __init__(self) -> None:
        self.count = 0

    def value(self, value: Any, key: str = "", named: bool = False) -> Any:
        """`value`, found under `key`; `named`: the key is a user-chosen name (an env var's)."""
        if isinstance(value, str):
            if named and value and looks_secret(key):
                self.count += 1
                return REDACTED
            if key in _EMBEDDED:
                return self.embedded(value)
            redacted, n = redact_text(value)
            self.count += n
            return redacted
        if isinstance(value, dict):
            return self.mapping(value, key, named and looks_secret(key))
        if isinstance(value, list):
            return [self.value(item, key) for item in value]
        return value

    def mapping(self, obj: dict[Any, Any], key: str, secret: bool) -> dict[Any, Any]:
        named = key in _NAMED_MAPS
        pair = obj.get("name") if isinstance(obj.get("name"), str) and "value" in obj else None
        out = {}
        for k, v in obj.items():
            name = str(k)
            if pair is not None and name == "value" and isinstance(v, str) and v and looks_secret(pair):
                self.count += 1
                out[k] = REDACTED  # {name: HF_TOKEN, value: ...}: an env entry or a pipeline parameter
            elif secret and name in _NAME_VALUE_KEYS and isinstance(v, str) and v:
                self.count += 1
                out[k] = REDACTED  # {hf_token: {defaultValue: ...}}
            else:
                out[k] = self.value(v, name, named)
        return out

    def embedded(self, text: str) -> str:
        if not text.strip():
            return text
        try:
            inner = json.loads(text)
        except (ValueError, RecursionError):
            inner = _yaml_object(text)
        if not isinstance(inner, (dict, list)):
            self.count += 1
            return REDACTED  # cannot be read, may embed an env: shown as redacted
        before = self.count
        redacted = self.value(inner)
        if self.count == before:
            return text
        return json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))


def _yaml_object(text: str) -> Any:
    try:
        import yaml  # comes with the kubernetes client; only YAML embedded in a string needs it
    except ImportError:  # pragma: no cover - a dependency of kubernetes
        return None
    try:
        return yaml.safe_load(text)
    except Exception:  # any YAML error: the caller redacts the string whole
        return None


def redact_object(obj: Any) -> tuple[Any, int]:
    """A copy of a decoded JSON object with secret-like values replaced by `<redacted>`, and how
    many were replaced. Keys and structure are kept; the input is not changed."""
    redactor = _Redactor()
    return redactor.value(obj), redactor.count
