import optparse

from .servers import FTPServer


def main():
    parser = optparse.OptionParser()
    parser.add_option("-i", "--interface", default=None)
    parser.add_option("-p", "--port", type="int", default=2121)
    options, args = parser.parse_args()
    ftpd = FTPServer((options.interface, options.port), object)
    local = FTPServer(("127.0.0.1", 2122), object)
    return ftpd, local


main()
