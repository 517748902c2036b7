# Packages: .deb and .rpm through CPack, one package per component.
#
#   rackpulse-agent       the agent, its unit, /etc/rackpulse/agent.yaml,
#                         device profiles (modbus/, snmp/); depends on ipmitool
#   rackpulse-aggregator  the aggregator, its unit, /etc/rackpulse/aggregator.yaml
#                         and policy.yaml, the Grafana dashboards, the
#                         Prometheus alert rules (prometheus/rackpulse-rules.yml)
#   rackpulse-tools       rackpulsectl and the frame schema (.proto)
#
# `bash tools/package.sh` is the one command that builds them (Release,
# hardened, stripped) and runs lintian. By hand, from a build configured
# with -DCMAKE_INSTALL_PREFIX=/usr:  cpack -G "DEB;RPM"
#
# Library dependencies are found by dpkg-shlibdeps (DEB) and rpm's own
# ELF scan (RPM); the rest are named below. The targets' own install()
# rules (component "Unspecified") serve `make install`; the rules here are
# EXCLUDE_FROM_ALL, so only a component install (CPack) runs them and
# `make install` never writes /etc. Only these components are packaged.
include(GNUInstallDirs)

set(RP_PACKAGE_VERSION "" CACHE STRING
    "package version (empty: the project's, ${PROJECT_VERSION})")
set(RP_PACKAGE_RELEASE "1" CACHE STRING "package release (Debian revision, RPM Release)")
set(RP_PACKAGE_MAINTAINER "rackpulse maintainers <rackpulse@example.org>" CACHE STRING
    "Maintainer of the packages")
if(RP_PACKAGE_VERSION STREQUAL "")
  set(RP_PACKAGE_VERSION_EFFECTIVE "${PROJECT_VERSION}")
else()
  set(RP_PACKAGE_VERSION_EFFECTIVE "${RP_PACKAGE_VERSION}")
endif()

# The programs read /etc/rackpulse and /usr/share/rackpulse by default, so
# packages put their files exactly there (see agent.profiles_dir).
set(RP_ETC_DIR /etc/rackpulse)
set(RP_SHARE_DIR ${CMAKE_INSTALL_DATADIR}/rackpulse)
set(RP_UNIT_DIR lib/systemd/system)            # /usr/lib/systemd/system
set(RP_PKG_SRC ${CMAKE_SOURCE_DIR}/packaging)
set(RP_PKG_GEN ${CMAKE_BINARY_DIR}/packaging)

# Man pages and the Debian changelog are shipped gzip -9n (lintian asks).
set(RP_MAN_PAGES rackpulse-agent rackpulse-aggregator rackpulsectl)
set(_rp_gz_outputs)
foreach(page IN LISTS RP_MAN_PAGES)
  add_custom_command(
    OUTPUT ${RP_PKG_GEN}/man/${page}.1.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${RP_PKG_GEN}/man
    COMMAND gzip -9nc ${RP_PKG_SRC}/man/${page}.1 > ${RP_PKG_GEN}/man/${page}.1.gz
    DEPENDS ${RP_PKG_SRC}/man/${page}.1
    COMMENT "gzip ${page}.1" VERBATIM)
  list(APPEND _rp_gz_outputs ${RP_PKG_GEN}/man/${page}.1.gz)
endforeach()
add_custom_command(
  OUTPUT ${RP_PKG_GEN}/changelog.Debian.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${RP_PKG_GEN}
  COMMAND gzip -9nc ${RP_PKG_SRC}/changelog > ${RP_PKG_GEN}/changelog.Debian.gz
  DEPENDS ${RP_PKG_SRC}/changelog
  COMMENT "gzip changelog" VERBATIM)
add_custom_target(rp_package_files ALL DEPENDS ${_rp_gz_outputs} ${RP_PKG_GEN}/changelog.Debian.gz)

# rp_package_common(COMPONENT PACKAGE MANPAGE): binary's man page, copyright,
# changelog and lintian overrides (if any) of one package.
function(rp_package_common comp pkg page)
  install(FILES ${RP_PKG_GEN}/man/${page}.1.gz
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT ${comp} EXCLUDE_FROM_ALL)
  install(FILES ${RP_PKG_SRC}/copyright ${RP_PKG_GEN}/changelog.Debian.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg} COMPONENT ${comp} EXCLUDE_FROM_ALL)
  if(EXISTS ${RP_PKG_SRC}/lintian/${pkg})
    install(FILES ${RP_PKG_SRC}/lintian/${pkg}
            DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
            COMPONENT ${comp} EXCLUDE_FROM_ALL)
  endif()
endfunction()

# --- rackpulse-agent
install(TARGETS rackpulse-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT agent EXCLUDE_FROM_ALL)
install(FILES ${RP_PKG_SRC}/config/agent.yaml DESTINATION ${RP_ETC_DIR}
        COMPONENT agent EXCLUDE_FROM_ALL)
install(FILES ${RP_PKG_SRC}/systemd/rackpulse-agent.service
        DESTINATION ${RP_UNIT_DIR} COMPONENT agent EXCLUDE_FROM_ALL)
install(DIRECTORY ${RP_PKG_SRC}/profiles/ DESTINATION ${RP_SHARE_DIR}/profiles
        COMPONENT agent EXCLUDE_FROM_ALL FILES_MATCHING PATTERN "*.yaml")
install(FILES ${RP_PKG_SRC}/ipmitool/enterprise-numbers.txt DESTINATION ${RP_SHARE_DIR}
        RENAME ipmitool-enterprise-numbers.txt COMPONENT agent EXCLUDE_FROM_ALL)
rp_package_common(agent rackpulse-agent rackpulse-agent)

# --- rackpulse-aggregator
install(TARGETS rackpulse-aggregator RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT aggregator EXCLUDE_FROM_ALL)
install(FILES ${RP_PKG_SRC}/config/aggregator.yaml ${RP_PKG_SRC}/config/policy.yaml
        DESTINATION ${RP_ETC_DIR} COMPONENT aggregator EXCLUDE_FROM_ALL)
install(FILES ${RP_PKG_SRC}/systemd/rackpulse-aggregator.service
        DESTINATION ${RP_UNIT_DIR} COMPONENT aggregator EXCLUDE_FROM_ALL)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/dashboards/ DESTINATION ${RP_SHARE_DIR}/dashboards
        COMPONENT aggregator EXCLUDE_FROM_ALL FILES_MATCHING PATTERN "*.json" PATTERN "*.yaml")
install(FILES ${RP_PKG_SRC}/prometheus/rackpulse-rules.yml DESTINATION ${RP_SHARE_DIR}/prometheus
        COMPONENT aggregator EXCLUDE_FROM_ALL)
rp_package_common(aggregator rackpulse-aggregator rackpulse-aggregator)

# --- rackpulse-tools
install(TARGETS rackpulsectl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT tools EXCLUDE_FROM_ALL)
install(FILES ${CMAKE_SOURCE_DIR}/proto/rackpulse.proto DESTINATION ${RP_SHARE_DIR}/proto
        COMPONENT tools EXCLUDE_FROM_ALL)
rp_package_common(tools rackpulse-tools rackpulsectl)

# Maintainer scripts, filled in per package: RP_DEB_PACKAGE, RP_RPM_PACKAGE,
# RP_UNIT, RP_STATE (what purge deletes under /var/lib/rackpulse); and the
# package's config files under /etc/rackpulse (conffiles, %config).
function(rp_package_scripts comp pkg state configs)
  set(RP_DEB_PACKAGE ${pkg})
  set(RP_RPM_PACKAGE ${pkg})
  set(RP_UNIT ${pkg}.service)
  set(RP_STATE "${state}")
  set(dir ${RP_PKG_GEN}/deb/${comp})
  foreach(script postinst prerm postrm)
    configure_file(${RP_PKG_SRC}/debian/${script}.in ${dir}/${script} @ONLY)
  endforeach()
  set(conffiles "")
  set(rpm_configs "")
  foreach(f IN LISTS configs)
    string(APPEND conffiles "${RP_ETC_DIR}/${f}\n")
    list(APPEND rpm_configs "%config(noreplace) ${RP_ETC_DIR}/${f}")
  endforeach()
  file(WRITE ${dir}/conffiles "${conffiles}")
  foreach(script post preun postun)
    configure_file(${RP_PKG_SRC}/rpm/${script}.sh.in ${RP_PKG_GEN}/rpm/${comp}/${script}.sh @ONLY)
  endforeach()
  string(TOUPPER ${comp} C)
  set(CPACK_DEBIAN_${C}_PACKAGE_CONTROL_EXTRA
      "${dir}/conffiles;${dir}/postinst;${dir}/prerm;${dir}/postrm" PARENT_SCOPE)
  set(CPACK_RPM_${C}_PRE_INSTALL_SCRIPT_FILE ${RP_PKG_SRC}/rpm/pre.sh PARENT_SCOPE)
  set(CPACK_RPM_${C}_POST_INSTALL_SCRIPT_FILE ${RP_PKG_GEN}/rpm/${comp}/post.sh PARENT_SCOPE)
  set(CPACK_RPM_${C}_PRE_UNINSTALL_SCRIPT_FILE ${RP_PKG_GEN}/rpm/${comp}/preun.sh PARENT_SCOPE)
  set(CPACK_RPM_${C}_POST_UNINSTALL_SCRIPT_FILE ${RP_PKG_GEN}/rpm/${comp}/postun.sh PARENT_SCOPE)
  set(CPACK_RPM_${C}_USER_FILELIST "${rpm_configs}" PARENT_SCOPE)
endfunction()
rp_package_scripts(agent rackpulse-agent
  "/var/lib/rackpulse/spool /var/lib/rackpulse/ipmi /var/lib/rackpulse/agent.seq" "agent.yaml")
rp_package_scripts(aggregator rackpulse-aggregator "/var/lib/rackpulse/aggregator"
  "aggregator.yaml;policy.yaml")

# --- CPack
set(CPACK_PACKAGE_NAME rackpulse)
set(CPACK_PACKAGE_VENDOR "rackpulse")
set(CPACK_PACKAGE_CONTACT "${RP_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_VERSION "${RP_PACKAGE_VERSION_EFFECTIVE}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL agent aggregator tools)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
# Descriptions: a synopsis and a body per package. CPack indents the body
# for the .deb (a blank line becomes " ."); the .rpm takes it as it is.
set(RP_AGENT_SUMMARY "rack telemetry agent for liquid-cooled AI racks")
set(RP_AGENT_BODY
"rackpulse-agent runs on each rack host. It scrapes the rack's CDUs over
Modbus, its PDUs over SNMP and its BMCs through ipmitool on one event
loop, computes window statistics and derived thermal series (delta T,
heat removed), and
publishes one protobuf frame per interval to Kafka, keyed by rack id,
with an on-disk spool while Kafka is away.

This package holds the agent, its systemd service (run as the unprivileged
user rackpulse), /etc/rackpulse/agent.yaml and the device profiles.")
set(RP_AGGREGATOR_SUMMARY "rack state and deploy gates from rackpulse telemetry")
set(RP_AGGREGATOR_BODY
"rackpulse-aggregator consumes the frames of rackpulse agents from Kafka as
a consumer group, keeps rack state in LMDB exactly once, and answers over
HTTP whether more power may land on a rack now (deploy gates), with
Prometheus metrics for Grafana.

This package holds the aggregator, its systemd service (run as the
unprivileged user rackpulse, listening on 127.0.0.1:8470),
/etc/rackpulse/aggregator.yaml, an example gate policy
(/etc/rackpulse/policy.yaml) and Grafana dashboards.")
set(RP_TOOLS_SUMMARY "command line client for the rackpulse aggregator")
set(RP_TOOLS_BODY
"rackpulsectl asks a rackpulse aggregator from a shell or a deploy
pipeline whether work may land on a rack (exit status 0 allow, 1 deny,
2 error), shows a rack's state, and tails telemetry frames from Kafka.

This package also holds the frame schema, rackpulse.proto.")
foreach(C AGENT AGGREGATOR TOOLS)
  set(CPACK_DEBIAN_${C}_DESCRIPTION "${RP_${C}_SUMMARY}\n${RP_${C}_BODY}")
  set(CPACK_RPM_${C}_PACKAGE_SUMMARY "${RP_${C}_SUMMARY}")
  set(CPACK_RPM_${C}_PACKAGE_DESCRIPTION "${RP_${C}_BODY}")
endforeach()

# DEB
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${RP_PACKAGE_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_AGENT_PACKAGE_NAME rackpulse-agent)
set(CPACK_DEBIAN_AGGREGATOR_PACKAGE_NAME rackpulse-aggregator)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME rackpulse-tools)
# libcurl4: loaded by the agent when a Redfish device is configured (not
# linked, so shlibdeps cannot see it).
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "ipmitool, adduser, libcurl4")
set(CPACK_DEBIAN_AGGREGATOR_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_AGENT_PACKAGE_RECOMMENDS "rackpulse-tools")
set(CPACK_DEBIAN_AGGREGATOR_PACKAGE_RECOMMENDS "rackpulse-tools")

# RPM
set(CPACK_RPM_COMPONENT_INSTALL ON)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE "${RP_PACKAGE_RELEASE}")
set(CPACK_RPM_PACKAGE_LICENSE "Proprietary")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
set(CPACK_RPM_CHANGELOG_FILE ${RP_PKG_SRC}/changelog.rpm)
set(CPACK_RPM_AGENT_PACKAGE_NAME rackpulse-agent)
set(CPACK_RPM_AGGREGATOR_PACKAGE_NAME rackpulse-aggregator)
set(CPACK_RPM_TOOLS_PACKAGE_NAME rackpulse-tools)
set(CPACK_RPM_AGENT_PACKAGE_REQUIRES "ipmitool, libcurl")
set(CPACK_RPM_AGENT_PACKAGE_REQUIRES_PRE "shadow-utils")
set(CPACK_RPM_AGGREGATOR_PACKAGE_REQUIRES_PRE "shadow-utils")
set(CPACK_RPM_AGENT_PACKAGE_SUGGESTS "rackpulse-tools")
set(CPACK_RPM_AGGREGATOR_PACKAGE_SUGGESTS "rackpulse-tools")
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /usr/lib/systemd /usr/lib/systemd/system /usr/share/man /usr/share/man/man1
    /usr/share/lintian /usr/share/lintian/overrides)
# The build host is Debian: keep rpmbuild from byte-compiling or adding
# build-id links the target's rpm would not expect.
set(CPACK_RPM_SPEC_MORE_DEFINE "%define _build_id_links none")

include(CPack)
