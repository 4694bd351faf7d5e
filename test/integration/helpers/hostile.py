# Build a tar from a JSON list of entries, byte for byte as given (names with "..", absolute
# names, links anywhere): what a hostile layer looks like. argv: OUT JSON
import io, json, sys, tarfile
out, spec = sys.argv[1], json.loads(sys.argv[2])
with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as t:
    for e in spec:
        ti = tarfile.TarInfo(e['name'])
        ti.mode = e.get('mode', 0o644)
        kind = e.get('type', 'file')
        data = e.get('data', '').encode()
        if kind == 'file':
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
            continue
        ti.type = {'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'link': tarfile.LNKTYPE}[kind]
        ti.linkname = e.get('link', '')
        if kind == 'dir':
            ti.mode = 0o755
        t.addfile(ti)
