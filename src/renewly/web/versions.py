"""`Renewly-Version`: every answer says which version of the API it speaks; a request may ask
for one, and one this server does not speak is refused (400 unsupported_version) rather than
answered in another. A version is the date its shape was fixed; a change that would break a
client (a field removed or renamed, a meaning changed) makes a new one, and older ones stay
served as long as docs/api.md says.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renewly.web.authentication import for_the_portal
from renewly.web.problems import problem_response

HEADER = "Renewly-Version"
CURRENT = "2026-06-01"
SUPPORTED = (CURRENT,)


class Versions:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or for_the_portal(scope):  # pages for people, not the API
            await self.app(scope, receive, send)
            return

        async def saying_the_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER.lower().encode(), CURRENT.encode())]
            await send(message)

        asked = [value.decode("latin-1").strip() for name, value in scope.get("headers", [])
                 if name.lower() == HEADER.lower().encode()]
        if asked and any(version not in SUPPORTED for version in asked):
            await problem_response(400, "unsupported_version", f"this server speaks {HEADER} "
                                   f"{', '.join(SUPPORTED)} only")(scope, receive, saying_the_version)
            return
        await self.app(scope, receive, saying_the_version)
