"""Readers: OSM networks (PBF/XML/download), road layers, vector and raster layers."""
