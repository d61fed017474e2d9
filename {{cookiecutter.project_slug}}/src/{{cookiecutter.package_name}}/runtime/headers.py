"""The request's header fields, parsed strictly and in linear time.

pywsgi lets its handler name the class that parses request headers (`MessageClass`); its own
goes through http.client and the email package, which takes about a sixth of the server's CPU
on a short request and accepts lines that proxies read differently. This one reads the same
lines under the same limits (100 fields, 64 KiB a line) with `bytes` methods only, so every
line costs time in proportion to its length, whatever bytes a client puts in it.
"""

# RFC 9110 section 5.6.2: the characters of a token (a field name).
TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Control characters other than horizontal tab, which a field value must not contain.
CONTROL = bytes(range(0x20)).replace(b"\t", b"") + b"\x7f"
# Transfer codings a server may meet (RFC 9112 section 7); any other is "not implemented".
KNOWN_CODINGS = {"chunked", "compress", "deflate", "gzip", "identity", "x-compress", "x-gzip"}


def is_token(text: bytes) -> bool:
    return bool(text) and not text.translate(None, TOKEN)


class RequestHeaders:
    """The header fields of one request, with the interface pywsgi and gunicorn read.

    A line that is not `name: value` (an obsolete folded line, a space before the colon, a
    control character), a repeated or signed Content-Length, or too many or too long lines set
    `status`: pywsgi then answers 400 and closes. Transfer-Encoding and Content-Length are
    recorded as they arrived, for the handler's framing checks (framing.py).
    """

    max_line = 65536
    max_fields = 100

    def __init__(self, fp=None, *_) -> None:
        self.status = ""
        self.headers: list[str] = []  # "Name: value\r\n" lines, read by pywsgi's get_environ()
        self.transfer_encodings: list[str] = []
        self.content_length_seen = False
        self._fields: dict[str, str] = {}  # lower-case name: first value
        if fp is not None:
            self.status = self._read(fp)

    def _read(self, fp) -> str:
        for _ in range(self.max_fields + 1):
            line = fp.readline(self.max_line + 1)
            if line in (b"\r\n", b"\n", b""):
                return ""
            if len(line) > self.max_line:
                return "header line too long"
            problem = self._add(line)
            if problem:
                return problem
        return f"more than {self.max_fields} header fields"

    def _add(self, line: bytes) -> str:
        # CRLF or a bare LF ends a line; any other CR is a control character, refused below.
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line
        name, colon, value = line.partition(b":")
        if not colon or not is_token(name):
            return "malformed header line"  # folded, no colon, or a space before the colon
        value = value.strip(b" \t")
        if len(value) != len(value.translate(None, CONTROL)):
            return "control character in a header value"
        text, key = value.decode("latin-1"), name.decode("ascii").lower()
        if key == "content-length":
            if self.content_length_seen or not value.isdigit():
                # A second length, or one int() would read loosely ("+5", "5_0"): the ways
                # in which request smuggling makes two servers disagree on a body's end.
                return "bad or repeated Content-Length"
            self.content_length_seen = True
        elif key == "transfer-encoding":
            self.transfer_encodings.append(text)
        self._fields.setdefault(key, text)
        self.headers.append(f"{name.decode('ascii')}: {text}\r\n")
        return ""

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._fields.get(name.lower(), default)

    getheader = get

    @property
    def typeheader(self) -> str | None:
        return self.get("content-type")

    def items(self) -> list[tuple[str, str]]:
        return [tuple(line[:-2].split(": ", 1)) for line in self.headers]

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        self._fields.pop(key, None)
        self.headers = [line for line in self.headers if line.split(":", 1)[0].lower() != key]

    def drop_upgrade(self) -> None:
        """Forget that the client asked to switch protocols (the request is not upgraded)."""
        connection = self.get("connection")
        del self["upgrade"]
        del self["connection"]
        if connection is not None:
            tokens = [t.strip() for t in connection.split(",") if t.strip().lower() != "upgrade"]
            if tokens:
                self._fields["connection"] = ", ".join(tokens)
                self.headers.append(f"Connection: {self._fields['connection']}\r\n")


def framing_problem(headers: RequestHeaders, version: str) -> tuple[int, str] | None:
    """(status, reason) if the request's body framing is ambiguous or unsupported: anything but
    no Transfer-Encoding, or one `Transfer-Encoding: chunked` without Content-Length on HTTP/1.1.
    """
    encodings = headers.transfer_encodings
    if not encodings:
        return None
    if len(encodings) > 1:
        return 400, "Transfer-Encoding must appear once"
    if headers.content_length_seen:
        return 400, "a request has Content-Length or Transfer-Encoding, not both"
    if version != "HTTP/1.1":
        return 400, "Transfer-Encoding needs HTTP/1.1"
    codings = [coding.strip().lower() for coding in encodings[0].split(",")]
    if codings == ["chunked"]:
        return None
    if any(coding not in KNOWN_CODINGS for coding in codings):
        return 501, "only the chunked transfer coding is supported"
    return 400, "Transfer-Encoding must be exactly 'chunked'"
