# `cmake --install <build> --prefix P` (`make install PREFIX=P`): a relocatable install.
#   P/bin/engage                  RUNPATH $ORIGIN/../lib/engage
#   P/lib/engage/libduckdb.so     DuckDB's shared library, private to Engage: kept out of P/lib
#                                 so it cannot shadow or be shadowed by another DuckDB there
# Nothing else is read at run time: the shipped pipelines are compiled in (src/CMakeLists.txt).
# The other shared libraries (XGBoost, LMDB, SQLite, OpenSSL, zlib, fmt, spdlog, toml++) come
# from Debian packages in the system library path. Moving or copying P keeps it working.
# A binary installed before already has the new RUNPATH and the build's time stamp, so
# file(INSTALL) would keep it and the rewrite below would not find the old RUNPATH: remove it
# first (a new inode also leaves a running engage alone).
install(CODE "file(REMOVE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/bin/engage\")")
install(TARGETS engage RUNTIME DESTINATION bin)
# The build RUNPATH (DUCKDB_ROOT/lib) becomes $ORIGIN/../lib/engage in the installed copy only.
# Not by CMake's INSTALL_RPATH: for an installed target CMake links the build-tree binary with a
# RUNPATH ending in ':', an empty entry that makes the loader look for every library in the
# current directory first (`LD_DEBUG=libs build/default/engage --help` shows it). Linking with
# the "install" RPATH (the build one) leaves the build tree as it was; the install step below
# rewrites the copy in place.
set_target_properties(engage PROPERTIES BUILD_WITH_INSTALL_RPATH ON)
install(CODE "
  file(RPATH_CHANGE FILE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/bin/engage\"
       OLD_RPATH \"${ENGAGE_BUILD_RUNPATH}\" NEW_RPATH \"\\\$ORIGIN/../${ENGAGE_INSTALL_LIBDIR}\")")
# DuckDB's builds name the library as its SONAME (libduckdb.so), which is what the binary asks
# for. The npm package ships a plain file; a -DDUCKDB_ROOT may hold a symlink, so the file it
# points to is installed under the link's name.
get_filename_component(ENGAGE_DUCKDB_REAL "${DUCKDB_LIBRARY}" REALPATH)
get_filename_component(ENGAGE_DUCKDB_NAME "${DUCKDB_LIBRARY}" NAME)
install(FILES "${ENGAGE_DUCKDB_REAL}" DESTINATION "${ENGAGE_INSTALL_LIBDIR}"
        RENAME "${ENGAGE_DUCKDB_NAME}"
        PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                    WORLD_READ WORLD_EXECUTE)
