"""SDMX-CSV written through the sdmx1 library's own data model: the reference that the
coordinator's direct writer (`coordinator.publish.sdmx.write_sdmx_csv`) is checked against.

Observations become sdmx1 ``Observation`` objects keyed with ``make_key``, each attribute
an ``AttributeValue``, and ``sdmx.to_csv`` writes them (what the coordinator did before it
wrote the rows itself).
"""

from __future__ import annotations

from pathlib import Path

import sdmx
from sdmx.format.csv.v1 import FormatOptions
from sdmx.model import common, v21

from coordinator.publish.sdmx import DATAFLOWS, SdmxRelease, attribute_values, structure_message


def write_with_library(release: SdmxRelease, directory: Path) -> list[Path]:
    """One SDMX-CSV file per dataflow of the release, written by ``sdmx.to_csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    message = structure_message(release.geos)
    paths = []
    for group_dim, observations in release.observations.items():
        flow = message.dataflow[DATAFLOWS[group_dim]]
        dsd = flow.structure
        attributes = {a.id: a for a in dsd.attributes}
        dataset = v21.DataSet(described_by=flow, structured_by=dsd)
        dataset.add_obs(
            [
                v21.Observation(
                    dimension=dsd.make_key(common.Key, dict(obs.key)),
                    value=obs.value,
                    attached_attribute={
                        k: common.AttributeValue(value=v, value_for=attributes[k])
                        for k, v in attribute_values(obs).items()
                    },
                )
                for obs in observations
            ]
        )
        path = directory / f"{flow.id}.csv"
        sdmx.to_csv(dataset, path=path, format_options=FormatOptions(), attributes="o", dtype=None)
        paths.append(path)
    return paths
