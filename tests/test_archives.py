"""GTFS zips are bounded: members, declared and actual inflated size, compression ratio, and
member paths never reach the file system. Hostile zips are built in code."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from careblocks.config import config_from_dict
from careblocks.errors import ConfigError, GTFSError
from careblocks.io.gtfs import ArchiveLimits, check_archive, read_gtfs

GOOD = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,A,http://a.org,UTC\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\na,A,-30.00,-51.20\nb,B,-30.01,-51.20\n",
    "routes.txt": "route_id,route_short_name,route_type\nR,R,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR,WK,w1\n",
    "calendar.txt": ("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,"
                     "end_date\nWK,1,1,1,1,1,0,0,20240101,20240630\n"),
}
HEAD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
ROWS = "w1,08:00:00,08:00:00,a,1\nw1,08:05:00,08:05:00,b,2\n"


def bomb(path: Path, inflated_bytes: int, *, names=GOOD) -> Path:
    """A GTFS zip whose stop_times.txt repeats one row until it inflates to ``inflated_bytes``,
    written in chunks (never held in memory)."""
    row = b"w1,08:00:00,08:00:00,a,1\n"
    chunk = row * (2**20 // len(row))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, text in names.items():
            zf.writestr(name, text)
        with zf.open("stop_times.txt", "w", force_zip64=inflated_bytes > 2**31) as fh:
            fh.write(HEAD.encode())
            left = inflated_bytes
            while left > 0:
                piece = chunk[: min(len(chunk), left)]
                fh.write(piece)
                left -= len(piece)
    return path


def _lie_about_size(path: Path, member: str, declared: int) -> None:
    """Patch the local and central headers of ``member`` to declare ``declared`` bytes."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    # local header: uncompressed size at offset 22
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    # central directory entry: uncompressed size at offset 24
    name = member.encode()
    i = data.find(b"PK\x01\x02")
    while i != -1:
        n = struct.unpack_from("<H", data, i + 28)[0]
        if bytes(data[i + 46:i + 46 + n]) == name:
            struct.pack_into("<I", data, i + 24, declared)
            break
        i = data.find(b"PK\x01\x02", i + 4)
    path.write_bytes(bytes(data))


def test_real_feeds_are_within_the_default_limits(data):
    feeds = sorted(data.glob("*/*.zip"))
    assert len(feeds) >= 4
    for p in feeds:
        with zipfile.ZipFile(p) as zf:
            check_archive(p, zf, ArchiveLimits())


def test_zip_bomb_is_refused_from_its_directory(tmp_path, monkeypatch):
    p = bomb(tmp_path / "bomb.zip", 64 * 2**20)
    # refused before any member is inflated: reading a member would be a bug
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("inflated a member"))
    with pytest.raises(GTFSError, match=r"bomb.zip: stop_times.txt inflates .* times.*max_compression_ratio"):
        read_gtfs([p], "2024-03-13")


def test_member_and_total_size_and_count_caps(tmp_path):
    p = bomb(tmp_path / "big.zip", 3 * 2**20)
    with pytest.raises(GTFSError, match="max_member_mb"):
        read_gtfs([p], "2024-03-13", limits=ArchiveLimits(max_member_bytes=2 * 2**20, max_ratio=1e9))
    with pytest.raises(GTFSError, match="max_archive_mb"):
        read_gtfs([p], "2024-03-13", limits=ArchiveLimits(max_total_bytes=2 * 2**20, max_ratio=1e9))
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for name, text in GOOD.items():
            zf.writestr(name, text)
        zf.writestr("stop_times.txt", HEAD + ROWS)
        for i in range(1001):
            zf.writestr(f"junk/{i}.txt", "")
    with pytest.raises(GTFSError, match=r"1,007 members.*max_archive_members"):
        read_gtfs([many], "2024-03-13")


def test_a_member_that_lies_about_its_size_is_cut_at_the_declared_size(tmp_path):
    # declares 500 kB (under the ratio floor) but inflates to 40 MB: zipfile stops at the
    # declared size, the CRC then fails, and the feed is refused without inflating the rest
    p = bomb(tmp_path / "liar.zip", 40 * 2**20)
    _lie_about_size(p, "stop_times.txt", 500_000)
    with zipfile.ZipFile(p) as zf:
        assert zf.getinfo("stop_times.txt").file_size == 500_000
    with pytest.raises(GTFSError, match="liar.zip"):
        read_gtfs([p], "2024-03-13")


def test_member_paths_never_reach_the_file_system(tmp_path):
    feed = tmp_path / "feed" / "paths.zip"
    feed.parent.mkdir()
    with zipfile.ZipFile(feed, "w") as zf:
        for name, text in GOOD.items():
            zf.writestr(f"../../../escape/{name}", text)
        zf.writestr("/abs/stop_times.txt", HEAD + ROWS)
    before = sorted(tmp_path.parent.rglob("*"))
    tables, _ = read_gtfs([feed], "2024-03-13")
    assert len(tables.stop_times) == 2  # read from the zip as streams
    assert sorted(tmp_path.parent.rglob("*")) == before
    assert not Path("/abs").exists() and not (tmp_path.parents[2] / "escape").exists()


def test_empty_stop_times_is_a_gtfs_error_not_a_type_error(tmp_path):
    p = tmp_path / "empty_st.zip"
    with zipfile.ZipFile(p, "w") as zf:
        for name, text in GOOD.items():
            zf.writestr(name, text)
        zf.writestr("stop_times.txt", "")
    with pytest.raises(GTFSError, match="stop_times.txt has no rows"):
        read_gtfs([p], "2024-03-13")


def test_archive_limits_are_config_keys():
    cfg = config_from_dict({"transit": {"max_compression_ratio": 50, "max_member_mb": 10}})
    lim = ArchiveLimits.from_config(cfg.transit)
    assert lim.max_ratio == 50 and lim.max_member_bytes == 10 * 2**20
    with pytest.raises(ConfigError, match="transit.max_compression_ratio"):
        config_from_dict({"transit": {"max_compression_ratio": 0}})
