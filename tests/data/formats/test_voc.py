from pathlib import Path

import numpy as np
import pytest

from darkyolo.data.formats.voc import parse_voc_xml, voc_to_record, write_voc_xml
from darkyolo.data.records import ImageRecord
from darkyolo.errors import DataError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"

XML = """<annotation>
  <filename>x.jpg</filename>
  <size><width>100</width><height>80</height><depth>3</depth></size>
  <object><name>cat</name><difficult>1</difficult>
    <bndbox><xmin>10</xmin><ymin>20</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>
  <object><name>dog</name>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>1</xmax><ymax>1</ymax></bndbox></object>
</annotation>
"""


def test_plain_corners_and_one_based(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text(XML)
    voc = parse_voc_xml(path)
    assert (voc.filename, voc.width, voc.height, voc.names) == ("x.jpg", 100, 80, ["cat", "dog"])
    np.testing.assert_array_equal(voc.boxes, [[10, 20, 30, 40], [1, 1, 1, 1]])
    assert voc.difficult.tolist() == [True, False]
    one_based = parse_voc_xml(path, one_based=True)
    np.testing.assert_array_equal(one_based.boxes, [[9, 19, 30, 40], [0, 0, 1, 1]])


def test_record_mapping_difficult_and_unknown_class(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text(XML)
    voc = parse_voc_xml(path)
    record = voc_to_record(voc, tmp_path / "x.jpg", {"cat": 0, "dog": 1})
    assert record.labels.tolist() == [0, 1] and record.label_file == path
    assert voc_to_record(
        voc, tmp_path / "x.jpg", {"cat": 0, "dog": 1}, skip_difficult=True
    ).labels.tolist() == [1]
    with pytest.raises(DataError, match="class 'dog' is not one of the names"):
        voc_to_record(voc, tmp_path / "x.jpg", {"cat": 0})


def test_missing_size_needs_an_image_size(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text(XML.replace("<width>100</width>", ""))
    voc = parse_voc_xml(path)
    with pytest.raises(DataError, match="<size> is missing"):
        voc_to_record(voc, tmp_path / "x.jpg", {"cat": 0, "dog": 1})
    record = voc_to_record(voc, tmp_path / "x.jpg", {"cat": 0, "dog": 1}, size=(7, 9))
    assert (record.width, record.height) == (7, 9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<annotation><object><name>a</name></object></annotation>", "has no <bndbox>"),
        ("<annotation><object><name>a</name><bndbox><xmin>x</xmin></bndbox></object></annotation>",
         "<xmin> must be a number"),
        ("<annotation><object><bndbox/></object></annotation>", "has no <name>"),
        ("<other/>", "expected an <annotation> root"),
        ("<annotation>", "not well-formed"),
    ],
)  # fmt: skip
def test_malformed_xml_is_named(tmp_path, text, message):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as error:
        parse_voc_xml(path)
    assert error.value.file == str(path)


def test_entity_expansion_is_refused(tmp_path):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        "<annotation><filename>&lol2;</filename></annotation>"
    )
    path = tmp_path / "bomb.xml"
    path.write_text(bomb)
    with pytest.raises(DataError, match="refused unsafe XML"):
        parse_voc_xml(path)


def test_write_then_read(tmp_path):
    record = ImageRecord(tmp_path / "x.jpg", 64, 48, [[1.5, 2, 30.25, 40]], [1])
    write_voc_xml(tmp_path / "x.xml", record, ["a", "b"])
    voc = parse_voc_xml(tmp_path / "x.xml")
    assert (voc.filename, voc.width, voc.height, voc.names) == ("x.jpg", 64, 48, ["b"])
    np.testing.assert_allclose(voc.boxes, record.boxes)


def test_bccd_zero_area_boxes_are_read_as_written():
    folder = DATA / "bccd" / "Annotations"
    if not folder.is_dir():
        pytest.skip("shared data not present")
    voc = parse_voc_xml(folder / "BloodImage_00338.xml")
    zero = voc.boxes[(voc.boxes[:, 2] == voc.boxes[:, 0])]
    np.testing.assert_array_equal(zero, [[504, 337, 504, 337]])
