#!/usr/bin/env python3
"""Minimal HEIF (ISOBMFF) box editor for making test files. Standard library only.

  heif_edit.py dump IN
  heif_edit.py add-nclx IN OUT PRIMARIES TRANSFER MATRIX FULLRANGE
      Adds a colr/nclx property to the primary item (heif-enc 1.15 only uses
      its --transfer_characteristic etc. for the RGB->YCbCr conversion and
      writes no colr box).
  heif_edit.py ios18 IN OUT
      Restructures an Apple HEIC that has an HDR gain-map auxiliary image the
      way iOS 18 writes it: a 'tmap' (ISO 21496-1 tone-map derived) item with
      dimg -> [primary, gain map], an 'altr' entity group [tmap, primary], the
      'tmap' compatible brand, and the gain map's 'auxl' reference pointing to
      BOTH the primary and the tmap item. That last one is what libheif
      < 1.18 rejects with "Too many auxiliary image references"
      (libheif #1190/#1213/#1573; fixed by 9138f328 and 3a6f8cde, in 1.18.0).

Only what these edits need is parsed; everything else is copied verbatim.
Item data offsets (iloc, construction method 0) are shifted by the growth of
ftyp+meta; the new item's payload is appended in a second 'mdat' at the end.
"""
import struct
import sys


def u8(b, o): return b[o]
def u16(b, o): return struct.unpack_from(">H", b, o)[0]
def u32(b, o): return struct.unpack_from(">I", b, o)[0]
def u64(b, o): return struct.unpack_from(">Q", b, o)[0]


def boxes(data, start=0, end=None):
    """Yields (type, header_len, start, end) for the boxes in data[start:end]."""
    end = len(data) if end is None else end
    o = start
    while o + 8 <= end:
        size = u32(data, o)
        typ = data[o + 4:o + 8].decode("latin1")
        hl = 8
        if size == 1:
            size = u64(data, o + 8)
            hl = 16
        elif size == 0:
            size = end - o
        yield typ, hl, o, o + size
        o += size


def box(typ, payload):
    return struct.pack(">I", 8 + len(payload)) + typ.encode("latin1") + payload


def fullbox(typ, version, flags, payload):
    return box(typ, struct.pack(">I", (version << 24) | flags) + payload)


class Iloc:
    def __init__(self, payload):
        self.version = payload[0]
        self.flags = payload[1:4]
        o = 4
        self.offset_size = payload[o] >> 4
        self.length_size = payload[o] & 15
        self.base_offset_size = payload[o + 1] >> 4
        self.index_size = payload[o + 1] & 15 if self.version in (1, 2) else 0
        o += 2
        if self.version < 2:
            count = u16(payload, o); o += 2
        else:
            count = u32(payload, o); o += 4
        self.items = []
        for _ in range(count):
            if self.version < 2:
                iid = u16(payload, o); o += 2
            else:
                iid = u32(payload, o); o += 4
            cm = 0
            if self.version in (1, 2):
                cm = u16(payload, o) & 15; o += 2
            dri = u16(payload, o); o += 2
            base = self._read(payload, o, self.base_offset_size); o += self.base_offset_size
            n = u16(payload, o); o += 2
            ext = []
            for _ in range(n):
                idx = 0
                if self.index_size:
                    idx = self._read(payload, o, self.index_size); o += self.index_size
                off = self._read(payload, o, self.offset_size); o += self.offset_size
                ln = self._read(payload, o, self.length_size); o += self.length_size
                ext.append([idx, off, ln])
            self.items.append({"id": iid, "cm": cm, "dri": dri, "base": base, "ext": ext})

    @staticmethod
    def _read(b, o, n):
        return {0: lambda: 0, 4: lambda: u32(b, o), 8: lambda: u64(b, o)}[n]()

    @staticmethod
    def _write(v, n):
        return {0: b"", 4: struct.pack(">I", v), 8: struct.pack(">Q", v)}[n]

    def serialize(self):
        p = bytes([self.version]) + self.flags
        p += bytes([(self.offset_size << 4) | self.length_size, (self.base_offset_size << 4) | self.index_size])
        p += struct.pack(">H" if self.version < 2 else ">I", len(self.items))
        for it in self.items:
            p += struct.pack(">H" if self.version < 2 else ">I", it["id"])
            if self.version in (1, 2):
                p += struct.pack(">H", it["cm"])
            p += struct.pack(">H", it["dri"])
            p += self._write(it["base"], self.base_offset_size)
            p += struct.pack(">H", len(it["ext"]))
            for idx, off, ln in it["ext"]:
                if self.index_size:
                    p += self._write(idx, self.index_size)
                p += self._write(off, self.offset_size) + self._write(ln, self.length_size)
        return box("iloc", p)


def parse_iref(payload):
    version = payload[0]
    o = 4
    refs = []
    idsz = 2 if version == 0 else 4
    fmt = ">H" if version == 0 else ">I"
    while o + 8 <= len(payload):
        size = u32(payload, o)
        typ = payload[o + 4:o + 8].decode("latin1")
        q = o + 8
        frm = struct.unpack_from(fmt, payload, q)[0]; q += idsz
        n = u16(payload, q); q += 2
        to = [struct.unpack_from(fmt, payload, q + idsz * k)[0] for k in range(n)]
        refs.append([typ, frm, to])
        o += size
    return version, refs


def serialize_iref(version, refs):
    fmt = ">H" if version == 0 else ">I"
    p = b""
    for typ, frm, to in refs:
        q = struct.pack(fmt, frm) + struct.pack(">H", len(to)) + b"".join(struct.pack(fmt, t) for t in to)
        p += box(typ, q)
    return fullbox("iref", version, 0, p)


def parse_ipma(payload):
    version, flags = payload[0], u32(payload, 0) & 0xFFFFFF
    o = 4
    n = u32(payload, o); o += 4
    entries = []
    for _ in range(n):
        if version < 1:
            iid = u16(payload, o); o += 2
        else:
            iid = u32(payload, o); o += 4
        k = payload[o]; o += 1
        assoc = []
        for _ in range(k):
            if flags & 1:
                v = u16(payload, o); o += 2
                assoc.append((bool(v & 0x8000), v & 0x7FFF))
            else:
                v = payload[o]; o += 1
                assoc.append((bool(v & 0x80), v & 0x7F))
        entries.append([iid, assoc])
    return version, flags, entries


def serialize_ipma(version, flags, entries):
    p = struct.pack(">I", len(entries))
    for iid, assoc in entries:
        p += struct.pack(">H" if version < 1 else ">I", iid) + bytes([len(assoc)])
        for ess, idx in assoc:
            if flags & 1:
                p += struct.pack(">H", (0x8000 if ess else 0) | idx)
            else:
                assert idx < 128, "property index needs the 16-bit ipma form"
                p += bytes([(0x80 if ess else 0) | idx])
    return fullbox("ipma", version, flags, p)


class Heif:
    def __init__(self, data):
        self.data = data
        self.top = list(boxes(data))
        names = [t for t, *_ in self.top]
        assert names[0] == "ftyp", names
        self.ftyp = self.top[0]
        self.meta = next(b for b in self.top if b[0] == "meta")
        _, hl, ms, me = self.meta
        self.children = []  # [type, bytes]
        for typ, chl, cs, ce in boxes(data, ms + hl + 4, me):
            self.children.append([typ, data[cs:ce]])
        self.extra_mdat = b""

    def child(self, typ):
        for c in self.children:
            if c[0] == typ:
                return c
        return None

    def payload(self, typ):
        c = self.child(typ)
        return None if c is None else c[1][8:]

    def primary_id(self):
        p = self.payload("pitm")
        return u16(p, 4) if p[0] == 0 else u32(p, 4)

    def items(self):
        p = self.payload("iinf")
        version = p[0]
        o = 4 + (2 if version == 0 else 4)
        out = []
        for typ, hl, s, e in boxes(p, o):
            infe = p[s + hl:e]
            v = infe[0]
            if v >= 2:
                iid = u16(infe, 4) if v == 2 else u32(infe, 4)
                q = 6 if v == 2 else 8
                itype = infe[q + 2:q + 6].decode("latin1")
                out.append((iid, itype))
        return out

    def ipco(self):
        p = self.payload("iprp")
        props = []
        for typ, hl, s, e in boxes(p, 0):
            if typ == "ipco":
                for t2, hl2, s2, e2 in boxes(p, s + hl, e):
                    props.append((t2, p[s2:e2]))
        return props

    def ipma(self):
        p = self.payload("iprp")
        for typ, hl, s, e in boxes(p, 0):
            if typ == "ipma":
                return parse_ipma(p[s + hl:e])

    def set_iprp(self, props, ipma):
        ipco = box("ipco", b"".join(b for _, b in props))
        self.child("iprp")[1] = box("iprp", ipco + serialize_ipma(*ipma))

    def add_brand(self, brand):
        _, hl, s, e = self.ftyp
        p = self.data[s + hl:e]
        if brand.encode() not in [p[i:i + 4] for i in range(8, len(p), 4)]:
            p += brand.encode()
        self.new_ftyp = box("ftyp", p)

    def write(self, path):
        ftyp = getattr(self, "new_ftyp", None)
        _, hl, ms, me = self.meta
        meta_head = self.data[ms + hl:ms + hl + 4]
        iloc = Iloc(self.payload("iloc") and self.child("iloc")[1][8:])
        # Layout: ftyp, meta, then every other top-level box as it was.
        def build(iloc_bytes):
            kids = b"".join(iloc_bytes if t == "iloc" else b for t, b in self.children)
            return box("meta", meta_head + kids)
        old_head_len = me  # bytes up to the end of the original meta (ftyp+meta first)
        assert [t for t, *_ in self.top][:2] == ["ftyp", "meta"], "expects ftyp, meta first"
        ftyp_b = ftyp if ftyp else self.data[self.ftyp[2]:self.ftyp[3]]
        meta_b = build(iloc.serialize())
        delta = len(ftyp_b) + len(meta_b) - old_head_len
        for it in iloc.items:
            if it["cm"] == 0 and it["id"] not in getattr(self, "new_items", {}):
                if it["base"]:
                    it["base"] += delta
                else:
                    for ext in it["ext"]:
                        ext[1] += delta
        rest = self.data[me:]
        end_of_file = len(ftyp_b) + len(meta_b) + len(rest)
        # New items' payloads go into an mdat appended at the end.
        extra = b""
        for iid, blob in getattr(self, "new_items", {}).items():
            off = end_of_file + 8 + len(extra)
            for it in iloc.items:
                if it["id"] == iid:
                    it["ext"] = [[0, off, len(blob)]]
            extra += blob
        meta_b = build(iloc.serialize())
        assert len(ftyp_b) + len(meta_b) - old_head_len == delta
        out = ftyp_b + meta_b + rest + (box("mdat", extra) if extra else b"")
        with open(path, "wb") as f:
            f.write(out)


def cmd_dump(path):
    h = Heif(open(path, "rb").read())
    print("top:", [(t, e - s) for t, _, s, e in h.top])
    print("meta children:", [t for t, _ in h.children])
    print("primary:", h.primary_id())
    print("items:", h.items())
    if h.payload("iref") is not None:
        v, refs = parse_iref(h.payload("iref"))
        print("iref v%d:" % v, refs)
    print("ipco:", [t for t, _ in h.ipco()])
    print("ipma:", h.ipma())
    il = Iloc(h.child("iloc")[1][8:])
    print("iloc v%d off%d len%d base%d idx%d items=%d" % (il.version, il.offset_size, il.length_size,
                                                          il.base_offset_size, il.index_size, len(il.items)))


def cmd_add_nclx(src, dst, prim, trc, mat, full):
    h = Heif(open(src, "rb").read())
    props = h.ipco()
    colr = box("colr", b"nclx" + struct.pack(">HHHB", int(prim), int(trc), int(mat), 0x80 if int(full) else 0))
    props.append(("colr", colr))
    idx = len(props)  # 1-based
    version, flags, entries = h.ipma()
    pid = h.primary_id()
    for e in entries:
        if e[0] == pid:
            e[1].append((True, idx))
    h.set_iprp(props, (version, flags, entries))
    h.write(dst)


def iso21496_metadata():
    """ISO 21496-1 GainMapMetadata (version 0), single channel: SDR base
    (headroom 0), alternate headroom 2 stops, gain map min 0 / max 2 stops,
    gamma 1, offsets 1/64."""
    p = struct.pack(">BHHB", 0, 0, 0, 0)  # version, minimum_version, writer_version, flags
    p += struct.pack(">IIII", 0, 1, 2, 1)  # base / alternate hdr headroom
    p += struct.pack(">iIiIIIiIiI", 0, 1, 2, 1, 1, 1, 1, 64, 1, 64)
    return p


def cmd_ios18(src, dst):
    h = Heif(open(src, "rb").read())
    pid = h.primary_id()
    items = h.items()
    version, refs = parse_iref(h.payload("iref"))
    gain = None
    for typ, frm, to in refs:
        if typ == "auxl" and pid in to:
            gain = frm  # Apple: the gain map (and mattes) reference the primary with auxl
    assert gain is not None, "no auxiliary image referencing the primary"
    tmap_id = max(i for i, _ in items) + 1
    # iinf: add an infe v2 for the tmap item.
    p = h.payload("iinf")
    iv = p[0]
    cnt = u16(p, 4) if iv == 0 else u32(p, 4)
    ents = p[4 + (2 if iv == 0 else 4):]
    infe = fullbox("infe", 2, 0, struct.pack(">HH", tmap_id, 0) + b"tmap" + b"\0")
    head = struct.pack(">H", cnt + 1) if iv == 0 else struct.pack(">I", cnt + 1)
    h.child("iinf")[1] = fullbox("iinf", iv, 0, head + ents + infe)
    # iref: tmap dimg [primary, gain map]; every auxl to the primary also to tmap.
    for r in refs:
        if r[0] == "auxl" and pid in r[2] and tmap_id not in r[2]:
            r[2].append(tmap_id)
    refs.append(["dimg", tmap_id, [pid, gain]])
    h.child("iref")[1] = serialize_iref(version, refs)
    # Properties: tmap gets the primary's ispe (and nothing essential).
    props = h.ipco()
    v, flags, entries = h.ipma()
    prim_assoc = next(a for i, a in entries if i == pid)
    ispe = next(idx for ess, idx in prim_assoc if props[idx - 1][0] == "ispe")
    entries.append([tmap_id, [(False, ispe)]])
    h.set_iprp(props, (v, flags, entries))
    # iloc: an entry for tmap (offset patched at write time).
    il = Iloc(h.child("iloc")[1][8:])
    il.items.append({"id": tmap_id, "cm": 0, "dri": 0, "base": 0, "ext": [[0, 0, 0]]})
    h.child("iloc")[1] = il.serialize()
    h.new_items = {tmap_id: iso21496_metadata()}
    # grpl: altr [tmap, primary] (the tmap rendition preferred, base as fallback).
    group_id = tmap_id + 1
    altr = fullbox("altr", 0, 0, struct.pack(">III", group_id, 2, tmap_id) + struct.pack(">I", pid))
    if h.child("grpl"):
        h.child("grpl")[1] = box("grpl", h.child("grpl")[1][8:] + altr)
    else:
        h.children.append(["grpl", box("grpl", altr)])
    h.add_brand("tmap")
    h.write(dst)
    print("gain map item %d, tmap item %d; auxl refs now: %s" % (gain, tmap_id,
          [r for r in refs if r[0] == "auxl"]))


if __name__ == "__main__":
    cmd = sys.argv[1]
    {"dump": cmd_dump, "add-nclx": cmd_add_nclx, "ios18": cmd_ios18}[cmd](*sys.argv[2:])
