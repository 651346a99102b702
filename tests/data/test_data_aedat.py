"""AEDAT 2.0 / 3.1 readers: exact round trips and every malformed-file error."""

import numpy as np
import pytest
from formats import (
    AEDAT2_HEADER,
    AEDAT31_HEADER,
    aedat2_bytes,
    imu_packet,
    packet,
    polarity_packet,
    random_events,
    special_packet,
    write_aedat2,
    write_aedat31,
)

import arlif.data.aedat as aedat
from arlif.data import check_aedat2, check_aedat31, read_aedat2, read_aedat31
from arlif.errors import CorruptRecording, DataError


def assert_events(got, want):
    for g, w, name in zip(got, want, "txyp"):
        np.testing.assert_array_equal(g, np.asarray(w), err_msg=name)
    assert got[0].dtype == np.int64 and got[3].dtype == np.uint8


def test_aedat2_round_trip_spikingjelly_convention(tmp_path):
    rng = np.random.default_rng(1)
    t, x, y, p = random_events(rng, 500)
    x[:4], y[:4], t[-1] = [0, 127, 0, 127], [0, 0, 127, 127], 2**31 - 1  # corners and the largest stamp
    write_aedat2(tmp_path / "a.aedat", t, x, y, p)
    assert_events(read_aedat2(tmp_path / "a.aedat"), (t, x, y, p))


def test_aedat2_raw_fields_and_ignored_high_bits(tmp_path):
    rng = np.random.default_rng(2)
    t, xr, yr, pr = random_events(rng, 64)
    extra = rng.integers(0, 2, 64).astype(np.uint32) << 15 | (rng.integers(0, 2, 64).astype(np.uint32) << 31)
    (tmp_path / "a.aedat").write_bytes(aedat2_bytes(t, xr, yr, pr, extra_bits=extra))
    assert_events(read_aedat2(tmp_path / "a.aedat", convention="raw"), (t, xr, yr, pr))
    t2, x, y, p = read_aedat2(tmp_path / "a.aedat")
    np.testing.assert_array_equal(x, 127 - yr)
    np.testing.assert_array_equal(y, 127 - xr)
    np.testing.assert_array_equal(p, 1 - pr)


def test_aedat2_header_only_gives_no_events(tmp_path):
    (tmp_path / "a.aedat").write_bytes(AEDAT2_HEADER)
    t, x, y, p = read_aedat2(tmp_path / "a.aedat")
    assert len(t) == len(x) == len(y) == len(p) == 0


AEDAT2_MALFORMED = [
        (b"", "empty file"),
        (b"\x00\x00\x01\x02" * 4, "not an AEDAT 2.0 file"),
        (b"#!AER-DAT1.0\r\n" + b"\0" * 12, "not an AEDAT 2.0 file"),
        (b"#!AER-DAT2.0\r\n# no line end", "truncated AEDAT 2.0 header"),
        (AEDAT2_HEADER + b"\0" * 8 * 3 + b"\0" * 5, "not a multiple of the 8-byte event size"),
]


@pytest.mark.parametrize("reader", [read_aedat2, check_aedat2])
@pytest.mark.parametrize("content, message", AEDAT2_MALFORMED)
def test_aedat2_malformed_files_name_file_and_problem(tmp_path, content, message, reader):
    path = tmp_path / "bad.aedat"
    path.write_bytes(content)
    with pytest.raises(CorruptRecording, match=message) as err:
        reader(path)
    assert str(path) in str(err.value) and err.value.path == path and str(path) not in err.value.problem


def test_header_checks_accept_good_files_and_long_headers(tmp_path):
    rng = np.random.default_rng(4)
    t, x, y, p = random_events(rng, 50)
    # a header longer than the checks' first read, so that it is read on
    long_header = AEDAT2_HEADER + b"# a comment line of the recording software\r\n" * 200
    assert len(long_header) > 2 * aedat._HEAD_BYTES
    (tmp_path / "a.aedat").write_bytes(aedat2_bytes(t, x, y, p, header=long_header))
    check_aedat2(tmp_path / "a.aedat")
    assert len(read_aedat2(tmp_path / "a.aedat")[0]) == 50
    (tmp_path / "b.aedat").write_bytes(aedat2_bytes(t, x, y, p, header=long_header) + b"\0" * 3)
    with pytest.raises(CorruptRecording, match="not a multiple of the 8-byte event size"):
        check_aedat2(tmp_path / "b.aedat")
    (tmp_path / "h.aedat").write_bytes(AEDAT2_HEADER)  # no events: what the reader accepts, the check does
    check_aedat2(tmp_path / "h.aedat")
    long31 = AEDAT31_HEADER.replace(b"#!END", b"#Comment: long\r\n" * 600 + b"#!END")
    (tmp_path / "g.aedat").write_bytes(long31 + polarity_packet([1], [2], [3], [1]))
    check_aedat31(tmp_path / "g.aedat")
    write_aedat31(tmp_path / "e.aedat", [])  # a header without packets
    check_aedat31(tmp_path / "e.aedat")
    for check in (check_aedat2, check_aedat31):
        with pytest.raises(DataError, match="not found") as err:
            check(tmp_path / "nope.aedat")
        assert not isinstance(err.value, CorruptRecording)  # missing is not corrupt


def test_header_checks_read_only_the_start_of_a_recording(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    write_aedat2(tmp_path / "a.aedat", *random_events(rng, 200_000))  # 1.6 MB of events
    packets = [polarity_packet(*random_events(rng, 1000)) for _ in range(100)]  # 0.8 MB
    write_aedat31(tmp_path / "g.aedat", packets)
    read = []
    real_open = open

    def counting_open(*args, **kwargs):
        f = real_open(*args, **kwargs)
        real_read = f.read

        def counted(n=-1):
            data = real_read(n)
            read.append(len(data))
            return data

        f.read = counted
        return f

    monkeypatch.setattr(aedat, "open", counting_open, raising=False)
    for check, name in ((check_aedat2, "a.aedat"), (check_aedat31, "g.aedat")):
        read.clear()
        check(tmp_path / name)
        assert sum(read) <= aedat._HEAD_BYTES < (tmp_path / name).stat().st_size // 150


def test_aedat_missing_file(tmp_path):
    for reader in (read_aedat2, read_aedat31):
        with pytest.raises(DataError, match="not found"):
            reader(tmp_path / "nope.aedat")


def test_aedat31_round_trip_skips_other_packets_and_applies_overflow(tmp_path):
    rng = np.random.default_rng(3)
    t1, x1, y1, p1 = random_events(rng, 40, t0=2**31 - 400)
    low = t1 < 2**31
    packets = [
        special_packet(),
        polarity_packet(t1[low], x1[low], y1[low], p1[low], overflow=0),
        imu_packet(),
        polarity_packet(t1[~low] - 2**31, x1[~low], y1[~low], p1[~low], overflow=1),
        polarity_packet([5, 6], [1, 2], [3, 4], [1, 0], overflow=2, capacity=5),  # 3 unused slots
        special_packet(1),
    ]
    assert low.any() and (~low).any()
    write_aedat31(tmp_path / "g.aedat", packets)
    want_t = np.concatenate([t1, [5 + 2 * 2**31, 6 + 2 * 2**31]])
    want = (want_t, np.r_[x1, 1, 2], np.r_[y1, 3, 4], np.r_[p1, 1, 0])
    assert_events(read_aedat31(tmp_path / "g.aedat"), want)


def test_aedat31_header_only_and_no_polarity(tmp_path):
    write_aedat31(tmp_path / "g.aedat", [special_packet()])
    assert all(len(a) == 0 for a in read_aedat31(tmp_path / "g.aedat"))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"#!AER-DAT2.0\r\n", "not an AEDAT 3.x file"),
        (b"#!AER-DAT3.1\r\n#Format: RAW\r\n" + b"\0" * 40, "no b'#!END-HEADER"),
        (AEDAT31_HEADER + polarity_packet([1], [2], [3], [1])[:-3], "declares 8 bytes of events but only 5"),
        (AEDAT31_HEADER + polarity_packet([1], [2], [3], [1]) + b"\0" * 10, "too few for a 28-byte"),
        (AEDAT31_HEADER + packet(1, b"\0" * 16, 8, number=3, capacity=2), "corrupt AEDAT 3.1 packet header"),
        (AEDAT31_HEADER + packet(1, b"\0" * 16, 0, number=2), "corrupt AEDAT 3.1 packet header"),
        (AEDAT31_HEADER + packet(1, b"\0" * 8, 8, number=1, ts_offset=6), "corrupt polarity packet"),
    ],
)
def test_aedat31_malformed_files_name_file_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.aedat"
    path.write_bytes(content)
    with pytest.raises(CorruptRecording, match=message) as err:
        read_aedat31(path)
    assert str(path) in str(err.value)
    # the header check reads the header and the first packet's header: all cases but trailing bytes after a
    # good first packet are found by it
    if message == "too few for a 28-byte":
        check_aedat31(path)
    else:
        with pytest.raises(CorruptRecording, match=message):
            check_aedat31(path)


def test_aedat31_check_leaves_later_packets_to_the_reader(tmp_path):
    path = tmp_path / "g.aedat"
    write_aedat31(path, [polarity_packet([1], [2], [3], [1]), polarity_packet([5, 6], [1, 2], [3, 4], [1, 0])])
    path.write_bytes(path.read_bytes()[:-3])  # the second packet cut short
    check_aedat31(path)  # reading on would read the whole file
    with pytest.raises(CorruptRecording, match="declares 16 bytes of events but only 13 remain"):
        read_aedat31(path)
