# %pre of rackpulse-agent and rackpulse-aggregator: the unprivileged system
# user "rackpulse" that runs both services.
getent group rackpulse >/dev/null || groupadd -r rackpulse
getent passwd rackpulse >/dev/null || \
    useradd -r -g rackpulse -d /var/lib/rackpulse -M -s /sbin/nologin \
        -c "rackpulse telemetry" rackpulse
exit 0
