"""glTF 2.0 scenes, binary (.glb) and embedded (.gltf) (:mod:`gpuseg.io.meshes` describes the formats).

Our own writer (about 100 lines of JSON and numpy): the layout is the documented one (one
named node, mesh and material per segment, the exact colour as ``baseColorFactor``, glTF's
metres and axes through :data:`LPS_MM_TO_GLTF`, the conversion recorded in
``asset.extras.gpuseg``); trimesh's exporter writes its own layout and materials. trimesh
reads these files back in the tests. gpuseg does not read glTF.
"""

from __future__ import annotations

import base64
import json
import struct

import numpy as np

from ..errors import InvalidInputError
from .mesh_common import MeshPart


__all__ = ["LPS_MM_TO_GLTF", "gltf_parts", "glb_bytes", "gltf_json_bytes"]

#: 4x4 matrix from LPS millimetres to glTF (metres, +X left, +Y superior, +Z anterior).
LPS_MM_TO_GLTF = np.array([[1e-3, 0.0, 0.0, 0.0],
                           [0.0, 0.0, 1e-3, 0.0],
                           [0.0, -1e-3, 0.0, 0.0],
                           [0.0, 0.0, 0.0, 1.0]])


def gltf_parts(segs: list[MeshPart]) -> tuple[dict, bytes]:
    rot = LPS_MM_TO_GLTF[:3, :3]
    unit_rot = rot / 1e-3
    bin_parts: list[bytes] = []
    length = 0
    buffer_views: list[dict] = []
    accessors: list[dict] = []
    meshes: list[dict] = []
    nodes: list[dict] = []
    materials: list[dict] = []

    def add_view(data: bytes, target: int) -> int:
        nonlocal length
        pad = (-length) % 4
        if pad:
            bin_parts.append(b"\0" * pad)
            length += pad
        buffer_views.append({"buffer": 0, "byteOffset": length, "byteLength": len(data), "target": target})
        bin_parts.append(data)
        length += len(data)
        return len(buffer_views) - 1

    for idx, s in enumerate(segs):
        r, g, b = s.color
        materials.append({"name": s.name, "doubleSided": False,
                          "pbrMetallicRoughness": {"baseColorFactor": [r, g, b, 1.0],
                                                   "metallicFactor": 0.0, "roughnessFactor": 0.5}})
        node: dict = {"name": s.name, "extras": {"segment_index": idx}}
        if len(s.faces):
            if len(s.vertices) > np.iinfo(np.uint32).max:
                raise InvalidInputError("glTF: too many vertices for 32-bit indices")
            pos = (s.vertices.astype(np.float64) @ rot.T).astype("<f4")
            nrm = (s.normals.astype(np.float64) @ unit_rot.T)
            nl = np.linalg.norm(nrm, axis=1)
            bad = ~(nl > 0)
            nl[bad] = 1.0
            nrm = nrm / nl[:, None]
            nrm[bad] = (0.0, 1.0, 0.0)
            nrm = nrm.astype("<f4")
            idx_arr = s.faces.reshape(-1).astype("<u4")
            bv_pos = add_view(pos.tobytes(), 34962)
            bv_nrm = add_view(nrm.tobytes(), 34962)
            bv_idx = add_view(idx_arr.tobytes(), 34963)
            accessors.append({"bufferView": bv_pos, "componentType": 5126, "count": len(pos), "type": "VEC3",
                              "min": pos.min(axis=0).astype(float).tolist(),
                              "max": pos.max(axis=0).astype(float).tolist()})
            a_pos = len(accessors) - 1
            accessors.append({"bufferView": bv_nrm, "componentType": 5126, "count": len(nrm), "type": "VEC3"})
            a_nrm = len(accessors) - 1
            accessors.append({"bufferView": bv_idx, "componentType": 5125, "count": len(idx_arr),
                              "type": "SCALAR"})
            a_idx = len(accessors) - 1
            meshes.append({"name": s.name, "primitives": [{"attributes": {"POSITION": a_pos, "NORMAL": a_nrm},
                                                           "indices": a_idx, "material": idx, "mode": 4}]})
            node["mesh"] = len(meshes) - 1
        nodes.append(node)
    pad = (-length) % 4
    if pad:
        bin_parts.append(b"\0" * pad)
        length += pad
    doc: dict = {
        "asset": {"version": "2.0", "generator": "gpuseg",
                  "extras": {"gpuseg": {"source_frame": "LPS millimetres",
                                        "conversion": "x=0.001*L, y=0.001*S, z=-0.001*P (metres, +Y up, +Z anterior)",
                                        "lps_mm_to_gltf": LPS_MM_TO_GLTF.tolist()}}},
        "scene": 0,
        "scenes": [{"name": "gpuseg", "nodes": list(range(len(nodes)))}],
        "nodes": nodes,
    }
    if materials:
        doc["materials"] = materials
    if meshes:
        doc["meshes"] = meshes
        doc["accessors"] = accessors
        doc["bufferViews"] = buffer_views
        doc["buffers"] = [{"byteLength": length}]
    return doc, b"".join(bin_parts)


def glb_bytes(segs: list[MeshPart]) -> bytes:
    doc, binary = gltf_parts(segs)
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 4)
    chunks = struct.pack("<II", len(js), 0x4E4F534A) + js
    if binary:
        chunks += struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


def gltf_json_bytes(segs: list[MeshPart]) -> bytes:
    doc, binary = gltf_parts(segs)
    if binary:
        doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(binary).decode("ascii")
    return json.dumps(doc, indent=1).encode("utf-8")


