import os


class Setting:
    name = None
    cli = None
    default = None


class Bind(Setting):
    name = "bind"
    action = "append"
    cli = ["-b", "--bind"]

    if 'PORT' in os.environ:
        default = ['0.0.0.0:{0}'.format(os.environ.get('PORT'))]
    else:
        default = ['127.0.0.1:8000']


class Listen(Setting):
    cli = ["--listen"]
    default = "[::]:%d" % 8443


class StatsAddress(Setting):
    name = "statsd_host"
    cli = ["--statsd-host"]
    default = "0.0.0.0:8125"  # a client's target, not a listen option


class Backlog(Setting):
    name = "backlog"
    cli = ["--backlog"]
    default = 2048


class Host(Setting):
    name = "host"
    default = f"{os.environ.get('HOST')}:80"  # interpolated host: not static


class ListenV6(Setting):
    cli = ["--listen-addr"]
    default = "[::]:80%d" % 8  # port 808: the digits before the placeholder are not the port
