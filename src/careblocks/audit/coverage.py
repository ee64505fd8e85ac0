"""How much of the study area the network extract and the facility layers cover, and how
many people the kept network component serves."""

from __future__ import annotations

from typing import Any

import numpy as np

from careblocks.audit.core import Audit

#: about this many sample points are laid over the study area to measure coverage
SAMPLES = 4000


def _graded(audit: Audit, check: str, where: str, share: float, what: str, hi: float, lo: float,
            fix: str, hi_key: str = "audit.min_area_share") -> None:
    msg = f"{what} {share:.0%}"
    if share < lo:
        audit.error(check, where, f"{msg}; {fix}", share)
    elif share < hi:
        audit.warning(check, where, f"{msg} (below {hi_key} {hi:.0%}); {fix}", share)
    else:
        audit.info(check, where, msg, share)


def area_samples(area: Any) -> np.ndarray:
    """About :data:`SAMPLES` points on a regular grid inside ``area`` (projected), shape (n, 2)."""
    import shapely

    x0, y0, x1, y1 = area.bounds
    step = max(np.sqrt(area.area / SAMPLES), 1.0)
    gx, gy = np.meshgrid(np.arange(x0 + step / 2, x1, step), np.arange(y0 + step / 2, y1, step))
    gx, gy = gx.ravel(), gy.ravel()
    shapely.prepare(area)
    inside = shapely.contains_xy(area, gx, gy)
    pts = np.column_stack([gx[inside], gy[inside]])
    if len(pts) == 0:  # a sliver: use its representative point
        p = area.representative_point()
        pts = np.array([[p.x, p.y]])
    return pts


def audit_network_coverage(cfg: Any, network: Any, area: Any, audit: Audit) -> float:
    """Share of the study area inside the extent (convex hull) of the kept network; and, as a
    figure, the share within ``audit.coverage_radius_m`` of a node (an airport or a park
    has no streets: that is not a gap in the extract)."""
    import shapely

    a = cfg.audit
    src = str(cfg.network.path) if cfg.network.path else cfg.network.source
    where = f"network ({src})"
    hull = shapely.convex_hull(shapely.multipoints(np.column_stack([network.x, network.y])))
    hull = hull.buffer(a.coverage_radius_m)  # a network clipped at the edge stops short of it
    share = float(shapely.intersection(hull, area).area / area.area) if area.area > 0 else 1.0
    _graded(
        audit, "coverage.network", where, share,
        f"share of the study area within {a.coverage_radius_m:g} m of the walking network's extent:",
        a.min_area_share, a.error_area_share,
        "the extract does not cover the study area: use an extract of the whole area or "
        "narrow study.boundary / study.bbox",
    )
    pts = area_samples(area)
    # shapely's tree (already loaded) rather than scipy.spatial's, whose import costs more
    # than this query on a warm run
    tree = shapely.STRtree(shapely.points(network.x, network.y))
    hit, dist = tree.query_nearest(shapely.points(pts), return_distance=True, all_matches=False)
    d = np.full(len(pts), np.inf)
    d[hit[0]] = dist
    near = float((d <= a.coverage_radius_m).mean())
    audit.info("coverage.network", where,
               f"share of the study area within {a.coverage_radius_m:g} m of a street: {near:.0%}",
               near)
    return share


#: people beyond ``walk.max_snap_m`` of the network: a warning from this share of the people
FAR_WARNING_SHARE = 0.001


def audit_far_origins(cfg: Any, origins: Any, audit: Audit, network: Any = None) -> None:
    """Origins farther than ``walk.max_snap_m`` from the kept network, and why: outside the
    extent (convex hull) of the network extract, or inside it with no walkable street near
    (an airport, industrial blocks, parks). Their travel times start with that straight walk."""
    m = float(cfg.walk.max_snap_m)
    pop = origins["population"].to_numpy(dtype=np.float64)
    snap = origins["snap_m"].to_numpy(dtype=np.float64)
    total = pop.sum()
    far = snap > m
    if not far.any() or total <= 0:
        return
    p = float(pop[far].sum())
    msg = (f"{int(far.sum()):,} origins ({p:,.0f} people, {p / total:.1%}) lie more than {m:g} m from "
           f"the kept network (up to {snap[far].max():,.0f} m); their travel times start with that "
           "straight walk")
    if network is not None and "geometry" in getattr(origins, "columns", ()):
        import shapely

        from careblocks.io.layers import representative_xy

        hull = shapely.convex_hull(shapely.multipoints(np.column_stack([network.x, network.y])))
        x, y = representative_xy(origins.geometry[far])
        out = ~shapely.contains_xy(hull, np.asarray(x), np.asarray(y))
        p_out = float(pop[far][out].sum())
        msg += (f"; {int(out.sum()):,} of them ({p_out:,.0f} people) lie outside the extent of the "
                f"network extract, {int((~out).sum()):,} ({p - p_out:,.0f} people) inside it with no "
                f"walkable street within {m:g} m (an airport, industrial blocks, parks): use a network "
                "extract that covers the whole study area")
    sev = audit.warning if p / total >= FAR_WARNING_SHARE else audit.info
    sev("coverage.far_origins", "origins (walk.max_snap_m)", msg, p / total)


def audit_origin_coverage(cfg: Any, origins: Any, audit: Audit, network: Any = None) -> float:
    """Share of the people whose origin lies within ``audit.coverage_radius_m`` of the kept
    network component (the rest reach it only by a long straight leg, or not at all); and
    the origins beyond ``walk.max_snap_m`` (:func:`audit_far_origins`, given the network)."""
    a = cfg.audit
    pop = origins["population"].to_numpy(dtype=np.float64)
    snap = origins["snap_m"].to_numpy(dtype=np.float64)
    total = pop.sum()
    audit_far_origins(cfg, origins, audit, network)
    share = float(pop[snap <= a.coverage_radius_m].sum() / total) if total > 0 else 1.0
    _graded(
        audit, "coverage.population", "network component kept", share,
        f"people living within {a.coverage_radius_m:g} m of the kept network:",
        a.min_population_share, a.error_area_share,
        "the network extract or its kept component misses where people live: check the "
        "extract's extent and disconnected pieces",
        hi_key="audit.min_population_share",
    )
    return share


def audit_layer_extents(cfg: Any, area_4326: Any, audit: Audit) -> None:
    """Share of the study area's box inside the extent of each facility layer (read from the
    file's header, no features read), as a figure for the audit table."""
    if area_4326 is None:
        return
    import pyogrio
    import shapely

    from careblocks._files import file_kind
    from careblocks.io.layers import VECTOR_SUFFIXES, _bbox_in

    x0, y0, x1, y1 = area_4326.bounds
    for name, svc in cfg.services.items():
        for i, layer in enumerate(svc.layers):
            path = layer.path
            key = f"services.{name}.layers[{i}]"
            if path.suffix.lower() not in VECTOR_SUFFIXES or file_kind(path) != "file":
                continue
            try:
                info = pyogrio.read_info(path, layer=layer.layer, force_total_bounds=True)
            except Exception:  # the reader reports unreadable files in one line
                continue
            bounds = info.get("total_bounds")
            crs = info.get("crs") or layer.crs
            if bounds is None or crs is None or not np.all(np.isfinite(bounds)):
                continue
            ax0, ay0, ax1, ay1 = _bbox_in((x0, y0, x1, y1), crs)
            area_box = shapely.box(ax0, ay0, ax1, ay1)
            ext = shapely.box(*bounds)
            if ext.area == 0 or area_box.area == 0 or int(info.get("features") or 0) < 20:
                continue  # a few points say little about the extent of a layer
            share = float(shapely.intersection(ext, area_box).area / area_box.area)
            # a figure, not a verdict: points never reach the edges of the area they cover
            audit.info("coverage.facilities", f"{key}: {path.name}",
                       f"the layer's extent covers {share:.0%} of the study area's box "
                       f"({int(info.get('features') or 0):,} features)", share)
