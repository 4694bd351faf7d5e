# Build a tar from a JSON list of entries, byte for byte as given (names with "..", absolute
# names, links anywhere, device nodes, pax records of any kind): what a hostile layer looks
# like. argv: OUT JSON, where JSON is a list of entries or {"global": {pax}, "entries": [...]}.
import io, json, sys, tarfile
out, spec = sys.argv[1], json.loads(sys.argv[2])
glob = {}
if isinstance(spec, dict):
    glob, spec = spec.get('global', {}), spec['entries']
with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT, pax_headers=glob) as t:
    for e in spec:
        ti = tarfile.TarInfo(e['name'])
        ti.mode = e.get('mode', 0o644)
        ti.mtime = e.get('mtime', 0)
        if 'pax' in e:
            ti.pax_headers = e['pax']
        kind = e.get('type', 'file')
        data = e.get('data', '').encode()
        if kind == 'file':
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
            continue
        ti.type = {'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'link': tarfile.LNKTYPE,
                   'fifo': tarfile.FIFOTYPE, 'char': tarfile.CHRTYPE, 'block': tarfile.BLKTYPE}[kind]
        ti.linkname = e.get('link', '')
        ti.devmajor = e.get('major', 0)
        ti.devminor = e.get('minor', 0)
        if kind == 'dir':
            ti.mode = e.get('mode', 0o755)
        t.addfile(ti)
