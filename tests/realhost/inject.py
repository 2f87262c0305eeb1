"""Run inside the container with deploykit's Python: apply the example stack
with one staged file broken on purpose, and print apply's JSON report.

Usage: inject.py CONFIG nginx     (a directive nginx -t rejects, in the site file)
       inject.py CONFIG service   (an option `deploykit serve` rejects, in the unit's ExecStart)
"""

import sys
from pathlib import Path

from deploykit.apply.engine import Deploy
from deploykit.errors import ApplyFailed
from deploykit.host.local import LocalHost
from deploykit.render import render
from deploykit.render.bundle import Bundle, Kind, RenderedFile
from deploykit.settings.load import load

settings = load(project=Path(sys.argv[1])).settings
bundle = render(settings)


def broken(file: RenderedFile) -> RenderedFile:
    if file.kind is Kind.NGINX_SITE and sys.argv[2] == "nginx":
        content = file.content.replace("server_name", "no_such_directive on;\n    server_name", 1)
        return RenderedFile(file.path, file.kind, content, file.mode, file.owner, file.group, file.secret)
    if file.kind is Kind.SERVICE_UNIT and sys.argv[2] == "service":
        content = file.content.replace(" serve ", " serve --no-such-option ", 1)
        return RenderedFile(file.path, file.kind, content, file.mode, file.owner, file.group, file.secret)
    return file


deploy = Deploy(LocalHost(), settings, Bundle(tuple(broken(f) for f in bundle)))
try:
    deploy.run()
except ApplyFailed:
    print(deploy.report.to_json())
    sys.exit(1)
print(deploy.report.to_json())
