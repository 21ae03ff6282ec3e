"""Client address -> location through a MaxMind-format City database.

Reading the database is the only I/O here. Results are cached per network
the database answered for (``traits.network``), so one entry serves every
address of that network; a lookup first probes the cache at each prefix
length it holds, most specific first, and only on a miss asks the database.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import geoip2.database
import geoip2.errors
import maxminddb

from geo.centroids import centroid
from ingressfed.errors import ConfigError
from ingressfed.model import Location

__all__ = ["ClientLocation", "GeoLookup"]

log = logging.getLogger(__name__)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CacheKey = tuple[int, int, int]  # (IP version, prefix length, network bits)
_BITS = {4: 32, 6: 128}


@dataclass(frozen=True, slots=True)
class ClientLocation:
    """What the database says about one client.

    ``prefix_len`` is the length of the network the answer holds for (an EDNS
    Client Subnet reply uses it as its scope).
    """

    location: Location | None
    country: str | None
    continent: str | None
    prefix_len: int | None = None


class GeoLookup:
    """Locate client addresses; not thread-safe (one per event loop)."""

    def __init__(self, path: str | Path, *, cache_size: int = 65536) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self.path = Path(path)
        self._reader = self._open(self.path)
        self._cache_size = cache_size
        self._cache: OrderedDict[_CacheKey, ClientLocation | None] = OrderedDict()
        # Prefix lengths present in the cache, per IP version, with entry counts,
        # so a lookup probes only lengths that can hit.
        self._plen_count: dict[int, dict[int, int]] = {4: {}, 6: {}}
        self._plens: dict[int, tuple[int, ...]] = {4: (), 6: ()}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _open(path: Path) -> geoip2.database.Reader:
        try:
            try:
                reader = geoip2.database.Reader(str(path), mode=geoip2.database.MODE_MMAP_EXT)
            except ValueError:  # the C extension is not installed; the pure-Python reader works too
                reader = geoip2.database.Reader(str(path), mode=geoip2.database.MODE_MMAP)
        except FileNotFoundError:
            raise ConfigError([f"geo.database: {str(path)!r} does not exist"]) from None
        except (OSError, maxminddb.InvalidDatabaseError) as exc:
            raise ConfigError([f"geo.database: {str(path)!r} is not a MaxMind DB file: {exc}"]) from exc
        db_type = reader.metadata().database_type
        if "City" not in db_type:
            reader.close()
            raise ConfigError(
                [f"geo.database: {str(path)!r} is a {db_type!r} database; a City database is needed"]
            )
        return reader

    @property
    def database_type(self) -> str:
        return str(self._reader.metadata().database_type)

    def close(self) -> None:
        self._reader.close()
        self._cache.clear()

    def __enter__(self) -> GeoLookup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def locate(self, ip: str) -> ClientLocation | None:
        """Location of ``ip`` (IPv4 or IPv6 text); None when unknown or not an address."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        version = addr.version
        value = int(addr)
        bits = _BITS[version]
        cache = self._cache
        for plen in self._plens[version]:
            key = (version, plen, value >> (bits - plen))
            if key in cache:
                cache.move_to_end(key)
                self.hits += 1
                return cache[key]
        self.misses += 1
        result, network = self._query(addr)
        if network is not None and network.version == version:
            self._remember((version, network.prefixlen, value >> (bits - network.prefixlen)), result)
        return result

    def _query(
        self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> tuple[ClientLocation | None, _Network | None]:
        try:
            response = self._reader.city(addr)
        except geoip2.errors.AddressNotFoundError as exc:
            return None, exc.network
        except ValueError:
            # An IPv6 address asked of an IPv4-only database.
            return None, None
        except maxminddb.InvalidDatabaseError as exc:
            # A damaged file must cost this client its geo answer, not its request.
            log.error("GeoIP database %s is corrupt at %s: %s", self.path, addr, exc)
            return None, None
        network = response.traits.network
        country = response.country.iso_code or response.registered_country.iso_code
        continent = response.continent.code
        lat, lon = response.location.latitude, response.location.longitude
        location = Location(lat, lon) if lat is not None and lon is not None else centroid(country, continent)
        if location is None and country is None and continent is None:
            return None, network
        prefix_len = network.prefixlen if network is not None else None
        return ClientLocation(location, country, continent, prefix_len), network

    def _remember(self, key: _CacheKey, result: ClientLocation | None) -> None:
        if self._cache_size == 0:
            return
        version, plen, _ = key
        if key not in self._cache:
            counts = self._plen_count[version]
            counts[plen] = counts.get(plen, 0) + 1
            if counts[plen] == 1:
                self._plens[version] = tuple(sorted(counts, reverse=True))
        self._cache[key] = result
        while len(self._cache) > self._cache_size:
            (old_version, old_plen, _), _ = self._cache.popitem(last=False)
            counts = self._plen_count[old_version]
            counts[old_plen] -= 1
            if counts[old_plen] == 0:
                del counts[old_plen]
                self._plens[old_version] = tuple(sorted(counts, reverse=True))
